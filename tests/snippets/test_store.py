"""The snippet store: named by SHA-1, bounded in count, atomic, inside its directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from disruptor.errors import InvalidName, InvalidPayload, NotFound, PayloadTooLarge
from disruptor.snippets.names import snippet_sha1
from disruptor.snippets.store import SnippetStore


def test_put_get_and_name_checks(tmp_path: Path) -> None:
    store = SnippetStore(tmp_path / "s", count_max=10, source_bytes_max=100)
    source = "def handle(item):\n    return 1\n"
    assert store.put(source) == (snippet_sha1(source), True)
    assert store.put(source, snippet_sha1(source)) == (snippet_sha1(source), False)
    assert store.get(snippet_sha1(source)) == source
    with pytest.raises(InvalidPayload):
        store.put(source, "0" * 40)
    with pytest.raises(NotFound):
        store.get("0" * 40)
    with pytest.raises(InvalidName):
        store.get("../../etc/passwd")
    with pytest.raises(PayloadTooLarge):
        store.put("x" * 101)
    assert [p.name for p in (tmp_path / "s").iterdir()] == [f"{snippet_sha1(source)}.py"]


def test_count_is_bounded_least_recently_used_first(tmp_path: Path) -> None:
    store = SnippetStore(tmp_path, count_max=3, source_bytes_max=100)
    names = []
    for n in range(3):
        names.append(store.put(f"x = {n}\n")[0])
    import os

    # Make the order of use explicit (mtime granularity can be coarse).
    for age, name in enumerate(names):
        os.utime(tmp_path / f"{name}.py", (1000 + age, 1000 + age))
    os.utime(tmp_path / f"{names[0]}.py", (5000, 5000))
    store.put("x = 3\n")
    assert store.count() == 3
    assert store.has(names[0]) and not store.has(names[1])


def test_another_puts_temporary_file_is_neither_counted_nor_evicted(tmp_path: Path) -> None:
    # A put in another thread writes ``.tmp-*.py`` and renames it into place: eviction running
    # meanwhile must not stat, count or remove it (that broke concurrent first submissions).
    store = SnippetStore(tmp_path, count_max=1, source_bytes_max=100)
    store.put("x = 1\n")
    in_flight = tmp_path / ".tmp-other.py"
    in_flight.write_text("x = 2\n")
    name, new = store.put("x = 3\n")
    assert new and in_flight.exists()
    assert store.count() == 1
    assert store.get(name) == "x = 3\n"
