from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
from pathlib import Path

import pytest
import zstandard

from disruptor.bundles.pack import pack_directory, pack_to_file
from disruptor.errors import ArchiveUnsafe, ManifestInvalid

from .archives import make_app


def packed(root: Path) -> bytes:
    out = io.BytesIO()
    pack_directory(root, out)
    return out.getvalue()


def names_and_modes(data: bytes) -> list[tuple[str, int, int, int, str, float]]:
    raw = zstandard.ZstdDecompressor().decompressobj().decompress(data)
    with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
        return [(m.name, m.mode, m.uid, m.gid, m.uname, m.mtime) for m in tf.getmembers()]


def test_same_directory_gives_the_same_bytes_and_name(tmp_path: Path) -> None:
    a = make_app(tmp_path / "a")
    b = tmp_path / "b"
    shutil.copytree(a, b)
    # Different times, permissions and creation order must not matter.
    for path in b.rglob("*"):
        os.utime(path, (1_000_000, 1_000_000))
    (b / "demo.py").chmod(0o600)
    (a / "pkg" / "data.txt").chmod(0o664)
    first, second = packed(a), packed(b)
    assert first == second
    out = io.BytesIO()
    result = pack_directory(a, out)
    assert result.sha1 == hashlib.sha1(first).hexdigest()
    assert result.sha256 == hashlib.sha256(first).hexdigest()
    assert result.size == len(first)
    assert result.manifest.name == "demo"


def test_entries_sorted_and_normalised(tmp_path: Path) -> None:
    root = make_app(tmp_path / "app", {"z.txt": b"z", "b/a.txt": b"a"})
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o700)
    entries = names_and_modes(packed(root))
    names = [e[0] for e in entries]
    assert names == ["b", "b/a.txt", "bundle.toml", "demo.py", "pkg", "pkg/data.txt", "run.sh",
                     "z.txt"]  # fmt: skip
    modes = {e[0]: e[1] for e in entries}
    assert modes["run.sh"] == 0o755 and modes["b"] == 0o755 and modes["demo.py"] == 0o644
    assert {(e[2], e[3], e[4], e[5]) for e in entries} == {(0, 0, "", 0)}


def test_caches_and_vcs_are_left_out(tmp_path: Path) -> None:
    root = make_app(
        tmp_path / "app",
        {
            "__pycache__/demo.cpython-311.pyc": b"x",
            ".git/HEAD": b"ref",
            ".hg/x": b"x",
            ".svn/x": b"x",
            "pkg/.DS_Store": b"x",
            "pkg/mod.pyc": b"x",
            ".pytest_cache/x": b"x",
        },
    )
    clean = make_app(tmp_path / "clean")
    assert packed(root) == packed(clean)


def test_symlink_to_a_file_inside_is_stored_as_a_copy(tmp_path: Path) -> None:
    root = make_app(tmp_path / "app")
    (root / "alias.txt").symlink_to("pkg/data.txt")
    entries = dict((e[0], e) for e in names_and_modes(packed(root)))
    assert "alias.txt" in entries
    raw = zstandard.ZstdDecompressor().decompressobj().decompress(packed(root))
    with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
        member = tf.getmember("alias.txt")
        assert member.isreg()
        assert tf.extractfile(member).read() == b"hello\n" * 100  # type: ignore[union-attr]


@pytest.mark.parametrize("target", ["/etc/passwd", "../outside.txt", "pkg"])
def test_symlink_outside_or_to_a_directory_is_an_error(tmp_path: Path, target: str) -> None:
    (tmp_path / "outside.txt").write_text("secret")
    root = make_app(tmp_path / "app")
    (root / "link").symlink_to(target)
    with pytest.raises(ArchiveUnsafe, match="link"):
        packed(root)


def test_fifo_is_an_error(tmp_path: Path) -> None:
    root = make_app(tmp_path / "app")
    os.mkfifo(root / "pipe")
    with pytest.raises(ArchiveUnsafe, match="pipe: not a regular file"):
        packed(root)


@pytest.mark.parametrize("name", ["new\nline.txt", "esc\x1b[31m.txt"])
def test_a_name_with_a_control_character_is_an_error(tmp_path: Path, name: str) -> None:
    app = make_app(tmp_path / "app", {f"sub/{name}": b"x"})
    with pytest.raises(ArchiveUnsafe, match="control character") as caught:
        pack_directory(app, io.BytesIO())
    assert "sub/" in str(caught.value) and "\x1b" not in str(caught.value)


def test_manifest_is_required(tmp_path: Path) -> None:
    root = make_app(tmp_path / "app")
    (root / "bundle.toml").unlink()
    with pytest.raises(ManifestInvalid):
        packed(root)


def test_pack_to_file_leaves_no_partial_file(tmp_path: Path) -> None:
    root = make_app(tmp_path / "app")
    out = tmp_path / "out" / "b.tar.zst"
    out.parent.mkdir()
    result = pack_to_file(root, out)
    assert hashlib.sha1(out.read_bytes()).hexdigest() == result.sha1
    (root / "bundle.toml").write_text("broken")
    with pytest.raises(ManifestInvalid):
        pack_to_file(root, tmp_path / "out" / "c.tar.zst")
    assert sorted(p.name for p in out.parent.iterdir()) == ["b.tar.zst"]
