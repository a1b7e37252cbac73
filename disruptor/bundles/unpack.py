"""Safe, bounded unpacking: a verified ``.tar.zst`` into a read-only directory, or nothing.

The zstd stream is decoded with a capped window, fed in small input steps so one step can never
produce more than ``STEP_OUTPUT_BYTES_MAX`` of output, and must end exactly at the end of its one
frame (truncation and trailing data are errors). The tar stream goes through ``TarReader``, which
refuses anything but regular files and directories before a byte is written. Files are created
with ``O_EXCL | O_NOFOLLOW`` inside a fresh temporary directory that only this code writes to.

Rule: an archive is either extracted whole and renamed into place, or refused and its temporary
directory removed; a half-extracted tree is never visible under its final name.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

import zstandard

from ..errors import ArchiveUnsafe, ManifestInvalid
from .limits import BundleLimits
from .manifest import MANIFEST_BYTES_MAX, MANIFEST_NAME, AppManifest, parse_app_manifest
from .tarstream import ArchiveEnd, Entry, EntryEnd, EntryStart, FileData, TarReader

# zstd's densest block turns 4 bytes into 128 KiB; 1 KiB of input can thus never yield more than
# about 32 MiB in one step, which bounds memory however the frame was crafted.
INPUT_STEP_BYTES = 1024
_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class Sink(Protocol):
    def start(self, entry: Entry) -> None: ...
    def data(self, chunk: bytes) -> None: ...
    def end(self, entry: Entry) -> None: ...


def decompressed_chunks(source: BinaryIO, limits: BundleLimits) -> Iterator[bytes]:
    """Yield the decoded bytes of the single zstd frame in ``source``; refuse anything else."""
    decoder = zstandard.ZstdDecompressor(max_window_size=limits.zstd_window_bytes_max)
    dobj = decoder.decompressobj(read_across_frames=False)
    seen_input = False
    while True:
        step = source.read(INPUT_STEP_BYTES)
        if not step:
            break
        seen_input = True
        try:
            out = dobj.decompress(step)
        except zstandard.ZstdError as exc:
            raise ArchiveUnsafe(f"not a valid zstd stream: {exc}") from None
        if out:
            yield out
        if dobj.eof:
            if dobj.unused_data or source.read(1):
                raise ArchiveUnsafe("trailing data after the zstd frame")
            return
    if not seen_input:
        raise ArchiveUnsafe("empty bundle: not a zstd stream")
    raise ArchiveUnsafe("truncated zstd stream: the frame does not end")


def scan_archive(source: BinaryIO, limits: BundleLimits, sink: Sink) -> TarReader:
    """Decode and check the whole archive, passing each entry and its bytes to ``sink``."""
    reader = TarReader(limits)
    for chunk in decompressed_chunks(source, limits):
        for event in reader.feed(chunk):
            if isinstance(event, FileData):
                sink.data(event.data)
            elif isinstance(event, EntryStart):
                sink.start(event.entry)
            elif isinstance(event, EntryEnd):
                sink.end(event.entry)
            elif isinstance(event, ArchiveEnd):
                pass
    reader.finish()
    return reader


class ManifestSink:
    """Writes nothing; keeps the root ``bundle.toml`` so an upload can be checked whole."""

    def __init__(self) -> None:
        self._capturing = False
        self._buffer = bytearray()
        self.found = False

    def start(self, entry: Entry) -> None:
        self._capturing = entry.name == MANIFEST_NAME and not entry.is_dir
        if self._capturing:
            if entry.size > MANIFEST_BYTES_MAX:
                raise ManifestInvalid(f"{MANIFEST_NAME}: larger than {MANIFEST_BYTES_MAX} bytes")
            self.found = True

    def data(self, chunk: bytes) -> None:
        if self._capturing:
            self._buffer += chunk

    def end(self, entry: Entry) -> None:
        self._capturing = False

    def manifest(self) -> AppManifest:
        if not self.found:
            raise ManifestInvalid(f"{MANIFEST_NAME}: missing from the bundle's root")
        return parse_app_manifest(bytes(self._buffer))


def check_archive(path: Path, limits: BundleLimits) -> AppManifest:
    """Decode and check the whole archive without writing; return its app manifest."""
    sink = ManifestSink()
    with path.open("rb") as f:
        scan_archive(f, limits, sink)
    return sink.manifest()


class _Extractor:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._fd = -1
        self.files: list[tuple[Path, int]] = []
        self.dirs: list[Path] = [root]

    def _path(self, entry: Entry) -> Path:
        return self.root.joinpath(*entry.name.split("/"))

    def start(self, entry: Entry) -> None:
        path = self._path(entry)
        if entry.is_dir:
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.dirs.append(path)
            return
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._fd = os.open(path, _OPEN_FLAGS, 0o600)
        self.files.append((path, entry.mode))

    def data(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:
            view = view[os.write(self._fd, view) :]

    def end(self, entry: Entry) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def make_read_only(self) -> None:
        for path, mode in self.files:
            os.chmod(path, 0o500 if mode & 0o111 else 0o400)
        # Implicit parents were created too; walk the tree so every directory is covered.
        for dirpath, _dirnames, _files in os.walk(self.root, topdown=False):
            os.chmod(dirpath, 0o500)


def make_writable(path: Path) -> None:
    """Undo ``make_read_only`` so a tree can be deleted."""
    if not path.exists():
        return
    for dirpath, _dirnames, _files in os.walk(path):
        os.chmod(dirpath, stat.S_IRWXU)


def remove_tree(path: Path) -> None:
    make_writable(path)
    shutil.rmtree(path, ignore_errors=True)


def unpack_archive(archive: Path, destination: Path, temp_dir: Path, limits: BundleLimits) -> Path:
    """Extract ``archive`` to ``destination`` (which must not exist) via a temp dir in
    ``temp_dir`` on the same file system; the result is read-only."""
    temp_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    staging = temp_dir / f"unpack-{destination.name}-{os.getpid()}-{id(archive):x}"
    remove_tree(staging)
    staging.mkdir(mode=0o700)
    extractor = _Extractor(staging)
    try:
        with archive.open("rb") as f:
            try:
                scan_archive(f, limits, extractor)
            finally:
                extractor.close()
        extractor.make_read_only()
        destination.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.rename(staging, destination)
    except BaseException:
        remove_tree(staging)
        raise
    return destination
