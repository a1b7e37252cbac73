from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest
import zstandard

from disruptor.bundles.pack import pack_to_file
from disruptor.bundles.settings import BundleSettings
from disruptor.bundles.unpack import (
    check_archive,
    decompressed_chunks,
    load_app_manifest,
    remove_tree,
    unpack_archive,
)
from disruptor.errors import ArchiveUnsafe, ManifestInvalid

from .archives import MANIFEST, header, make_app, member, tar, with_manifest, zst


def write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "bundle.tar.zst"
    path.write_bytes(data)
    return path


def test_unpack_round_trip_is_read_only(tmp_path: Path) -> None:
    app = make_app(tmp_path / "app", {"bin/run": b"#!/bin/sh\n"})
    (app / "bin" / "run").chmod(0o755)
    archive = tmp_path / "b.tar.zst"
    result = pack_to_file(app, archive)
    dest = tmp_path / "unpacked" / result.sha1
    unpack_archive(archive, dest, tmp_path / "tmp", BundleSettings())
    assert (dest / "pkg" / "data.txt").read_bytes() == b"hello\n" * 100
    assert (dest / "bundle.toml").read_text() == MANIFEST
    assert stat.S_IMODE((dest / "demo.py").stat().st_mode) == 0o444
    assert stat.S_IMODE((dest / "bin" / "run").stat().st_mode) == 0o555
    assert stat.S_IMODE(dest.stat().st_mode) == 0o555
    if os.geteuid() != 0:  # root ignores permission bits
        with pytest.raises(PermissionError):
            (dest / "new").write_text("x")
    assert list((tmp_path / "tmp").iterdir()) == []
    remove_tree(dest)
    assert not dest.exists()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"definitely not zstd" * 10, "not a valid zstd"),
        (zst(with_manifest())[:-9], "truncated zstd"),
        (zst(with_manifest()) + b"junk", "trailing data after the zstd"),
        (zst(with_manifest()) + zst(with_manifest()), "trailing data after the zstd"),
        (zst(b"plain text, not a tar" * 50), "not a tar"),
        (zst(tar(member("../escape", b"x"))), r"'\.\.'"),
        (zst(with_manifest(header("l", typeflag=b"2", linkname=b"/etc"))), "symbolic link"),
    ],
)
def test_bad_archives_are_refused_and_leave_nothing(
    tmp_path: Path, data: bytes, reason: str
) -> None:
    archive = write(tmp_path, data)
    dest = tmp_path / "unpacked" / ("a" * 40)
    with pytest.raises(ArchiveUnsafe, match=reason):
        unpack_archive(archive, dest, tmp_path / "tmp", BundleSettings())
    assert not dest.exists()
    assert list((tmp_path / "tmp").iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle.tar.zst", "tmp"]


def test_a_window_larger_than_allowed_is_refused(tmp_path: Path) -> None:
    params = zstandard.ZstdCompressionParameters.from_level(3, window_log=24)
    big = with_manifest(member("blob", os.urandom(4 << 20)))
    data = zstandard.ZstdCompressor(compression_params=params).compress(big)
    limits = BundleSettings(zstd_window_bytes_max=1 << 20)
    with pytest.raises(ArchiveUnsafe, match="not a valid zstd"):
        list(decompressed_chunks(io.BytesIO(data), limits))


def test_a_bomb_is_refused_without_filling_disk_or_memory(tmp_path: Path) -> None:
    # 64 MiB of zeros compress to a few KiB; the limit is 1 MiB unpacked.
    bomb = zst(tar(member("bundle.toml", MANIFEST.encode()), member("zeros", bytes(64 << 20))))
    assert len(bomb) < 64 * 1024
    archive = write(tmp_path, bomb)
    limits = BundleSettings(unpacked_bytes_max=1 << 20, file_bytes_max=1 << 20)
    with pytest.raises(ArchiveUnsafe, match="larger than"):
        unpack_archive(archive, tmp_path / "out", tmp_path / "tmp", limits)
    assert not (tmp_path / "out").exists()


def test_decoding_steps_bound_output(tmp_path: Path) -> None:
    data = zst(bytes(32 << 20))
    biggest = max(len(c) for c in decompressed_chunks(io.BytesIO(data), BundleSettings()))
    assert biggest <= 33 << 20


def test_check_archive_returns_manifest_and_requires_one(tmp_path: Path) -> None:
    assert check_archive(write(tmp_path, zst(with_manifest())), BundleSettings()).name == "demo"
    (tmp_path / "bundle.tar.zst").unlink()
    with pytest.raises(ManifestInvalid, match="missing"):
        check_archive(write(tmp_path, zst(tar(member("x", b"1")))), BundleSettings())
    (tmp_path / "bundle.tar.zst").unlink()
    bad = zst(tar(member("bundle.toml", b"name = 3")))
    with pytest.raises(ManifestInvalid, match="name"):
        check_archive(write(tmp_path, bad), BundleSettings())


def test_existing_destination_is_not_overwritten(tmp_path: Path) -> None:
    archive = write(tmp_path, zst(with_manifest()))
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "keep").write_text("k")
    with pytest.raises(OSError):
        unpack_archive(archive, dest, tmp_path / "tmp", BundleSettings())
    assert (dest / "keep").read_text() == "k"
    assert list((tmp_path / "tmp").iterdir()) == []
    assert os.listdir(dest) == ["keep"]


def test_load_from_directory(tmp_path: Path) -> None:
    (tmp_path / "bundle.toml").write_text(MANIFEST)
    assert load_app_manifest(tmp_path).name == "demo"


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(ManifestInvalid, match="missing"):
        load_app_manifest(tmp_path)
