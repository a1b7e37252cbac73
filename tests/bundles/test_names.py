from __future__ import annotations

import tracemalloc

import pytest

from disruptor.bundles.names import NODE_BYTES, NameIndex, fold
from disruptor.bundles.settings import BundleSettings
from disruptor.errors import ArchiveUnsafe


def admit(*entries: str) -> NameIndex:
    index = NameIndex(1 << 30)
    for entry in entries:
        index.add(entry.removesuffix("/"), entry.endswith("/"))
    return index


def test_ordinary_trees_are_admitted() -> None:
    index = admit("app/", "app/a.py", "app/lib/x.py", "app/lib/y.py", "b", "README", "Ünïcode")
    # app, app/a.py, app/lib (implied), app/lib/x.py, app/lib/y.py, b, README, Ünïcode
    assert index.nodes == 8
    # A directory first implied by a deeper name may still have its own entry, once.
    admit("lib/x.py", "lib/")
    with pytest.raises(ArchiveUnsafe, match="duplicate"):
        admit("lib/x.py", "lib/", "lib/")


@pytest.mark.parametrize(
    ("entries", "reason"),
    [
        (("a", "a"), "duplicate"),
        (("Readme", "README"), "case"),
        (("straße", "STRASSE"), "case"),  # case folding, not just lower-casing
        (("caf\u00e9", "cafe\u0301"), "case"),  # NFC: the same name, two encodings
        (("lib/x", "LIB/y"), "'LIB' collides with another spelling"),
        (("Lib/", "lib/x"), "'lib' collides with another spelling"),
        (("a", "a/b"), "below a file"),
        (("a/b/c", "a/b/c/d/e"), "below a file"),
        (("a/b", "a"), "name of a directory"),
        (("a", "a/"), "name of a file"),
    ],
)
def test_clashes_are_refused(entries: tuple[str, ...], reason: str) -> None:
    with pytest.raises(ArchiveUnsafe, match=reason):
        admit(*entries)


def test_a_cached_parent_does_not_hide_a_clash_under_another_spelling() -> None:
    # Many files in one directory (its key is cached), then the same directory spelled otherwise.
    with pytest.raises(ArchiveUnsafe, match="collides"):
        admit(*(f"pkg/m{i}.py" for i in range(50)), "PKG/n.py")
    with pytest.raises(ArchiveUnsafe, match="below a file"):
        admit(*(f"pkg/m{i}.py" for i in range(50)), "pkg/m3.py/x")


def test_fold_matches_the_unicode_definition_for_ascii_too() -> None:
    assert fold("MixedCase.PY") == "mixedcase.py"
    assert fold("ǅ") == "ǆ" and fold("ﬁ") == "fi"


def test_the_default_budget_admits_ordinary_names_at_the_entry_limit() -> None:
    # 200,000 entries (the entry limit) of ordinary names, as `disruptor pack` writes them.
    index = NameIndex(BundleSettings().names_bytes_max)
    for d in range(400):
        index.add(f"pkg{d:03d}", True)
        for f in range(499):
            index.add(f"pkg{d:03d}/module_{f:03d}.py", False)
    assert index.nodes == 200_000
    # Mixed case too: their spellings cost more, and still fit.
    mixed = NameIndex(BundleSettings().names_bytes_max)
    for d in range(400):
        mixed.add(f"Pkg{d:03d}", True)
        for f in range(499):
            mixed.add(f"Pkg{d:03d}/Module_{f:03d}.PY", False)
    assert mixed.nodes == 200_000


def test_the_budget_is_never_exceeded_whatever_the_shape() -> None:
    deep = "/".join(f"{level:02d}" + "p" * 61 for level in range(62))
    index = NameIndex(100_000)
    with pytest.raises(ArchiveUnsafe, match="more than 100000 bytes"):
        for i in range(10_000):
            index.add(f"{i}/{deep}", False)
    assert index.used_bytes <= 100_000
    mixed = NameIndex(100_000)
    with pytest.raises(ArchiveUnsafe, match="more than 100000 bytes"):
        for i in range(10_000):
            mixed.add(f"MixedCase{i}" + "X" * 200, False)  # spellings kept: they cost more
    assert mixed.used_bytes <= 100_000


@pytest.mark.parametrize("shape", ["flat", "deep", "mixed-case"])
def test_the_accounting_covers_the_memory_really_used(shape: str) -> None:
    # NODE_BYTES is what a node is charged; tracemalloc measures what the index really holds
    # (its peak included, when the dict doubles). Charged must cover measured.
    index = NameIndex(1 << 40)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        for i in range(40_000):
            if shape == "flat":
                index.add(f"module_{i:06d}.py", False)
            elif shape == "deep":
                index.add(f"d{i % 300}/e{i % 7}/f{i}", False)
            else:
                index.add(f"Module_{i:06d}.PY", False)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert index.nodes >= 40_000
    assert peak - before <= index.used_bytes
    assert index.used_bytes <= index.nodes * (NODE_BYTES + 64 + 20)


def test_an_archive_wandering_between_deep_directories_is_refused_early() -> None:
    # Each entry's parent is one the cache of recent directories no longer holds, so each
    # would be walked from the root: the walk budget stops it long before the entry limit.
    dirs = ["/".join(f"d{j}x{level}" for level in range(60)) for j in range(2000)]
    index = NameIndex(1 << 40, walk_steps_max=100_000)
    with pytest.raises(ArchiveUnsafe, match="more than 100000 steps"):
        for i in range(200_000):
            index.add(f"{dirs[i % len(dirs)]}/f{i}", False)
    assert index.walk_steps <= 100_000 + 60


def test_a_tree_walked_in_order_costs_a_fraction_of_a_step_per_entry() -> None:
    index = NameIndex(1 << 40)
    entries = 0
    for a in range(20):
        index.add(f"a{a}", True)
        for b in range(20):
            index.add(f"a{a}/b{b}", True)
            for c in range(20):
                index.add(f"a{a}/b{b}/c{c}.py", False)
                entries += 1
    assert index.walk_steps < entries * 0.5
