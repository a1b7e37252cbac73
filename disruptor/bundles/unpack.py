"""Safe, bounded unpacking: a verified ``.tar.zst`` into a read-only directory, or nothing.

The zstd stream must be exactly one complete frame (its block headers are walked first, so
truncation and trailing data are errors); it is then decoded with a capped window, a bounded
amount of output at a time. The tar stream goes through ``TarReader``, which
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
from .manifest import MANIFEST_BYTES_MAX, MANIFEST_NAME, AppManifest, parse_app_manifest
from .settings import BundleSettings
from .tarstream import ArchiveEnd, Entry, EntryEnd, EntryStart, FileData, TarReader

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
ZSTD_BLOCK_BYTES_MAX = 128 * 1024
READ_BYTES = 256 * 1024
# Decoded bytes handed on at a time: the bound on memory per step, whatever the input.
OUTPUT_CHUNK_BYTES = 1024 * 1024
# Unpacked bundles are read-only for everyone, the peer included.
READ_ONLY = 0o444
READ_ONLY_EXEC = 0o555
_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class Sink(Protocol):
    def start(self, entry: Entry) -> None: ...
    def data(self, chunk: bytes) -> None: ...
    def end(self, entry: Entry) -> None: ...


def check_zstd_framing(source: BinaryIO) -> None:
    """Walk the block headers of ``source``: exactly one zstd frame, complete, nothing after it.

    This reads a few bytes per 128 KiB block and decodes nothing, so truncation and trailing data
    are refused before decoding starts (the streaming decoder cannot tell them apart from a clean
    end). Dictionaries and skippable frames are refused too: bundles never use them.
    """
    source.seek(0)
    head = source.read(6)
    if len(head) < 6 or head[:4] != ZSTD_MAGIC:
        raise ArchiveUnsafe("not a valid zstd stream: no zstd frame at the start")
    descriptor = head[4]
    if descriptor & 0x08:
        raise ArchiveUnsafe("not a valid zstd stream: reserved frame header bit set")
    if descriptor & 0x03:
        raise ArchiveUnsafe("not a valid zstd stream: dictionaries are not used by bundles")
    single_segment = bool(descriptor & 0x20)
    fcs_size = (1 if single_segment else 0, 2, 4, 8)[descriptor >> 6]
    position = 5 + (0 if single_segment else 1) + fcs_size
    has_checksum = bool(descriptor & 0x04)
    while True:
        source.seek(position)
        raw = source.read(3)
        if len(raw) < 3:
            raise ArchiveUnsafe("truncated zstd stream: the frame does not end")
        block = int.from_bytes(raw, "little")
        last, kind, size = block & 1, (block >> 1) & 3, block >> 3
        if kind == 3:
            raise ArchiveUnsafe("not a valid zstd stream: reserved block type")
        if size > ZSTD_BLOCK_BYTES_MAX:
            raise ArchiveUnsafe("not a valid zstd stream: block larger than 128 KiB")
        position += 3 + (1 if kind == 1 else size)
        if last:
            break
    position += 4 if has_checksum else 0
    end = source.seek(0, os.SEEK_END)
    if end < position:
        raise ArchiveUnsafe("truncated zstd stream: the frame does not end")
    if end > position:
        raise ArchiveUnsafe("trailing data after the zstd frame")
    source.seek(0)


def decompressed_chunks(source: BinaryIO, limits: BundleSettings) -> Iterator[bytes]:
    """Yield the decoded bytes of the single zstd frame in ``source``; refuse anything else."""
    if source.read(1) == b"":
        raise ArchiveUnsafe("empty bundle: not a zstd stream")
    check_zstd_framing(source)
    decoder = zstandard.ZstdDecompressor(max_window_size=limits.zstd_window_bytes_max)
    reader = decoder.stream_reader(source, read_size=READ_BYTES, read_across_frames=False)
    try:
        while True:
            # ``read(n)`` returns at most n bytes however dense the frame: memory stays bounded.
            chunk = reader.read(OUTPUT_CHUNK_BYTES)
            if not chunk:
                return
            yield chunk
    except zstandard.ZstdError as exc:
        raise ArchiveUnsafe(f"not a valid zstd stream: {exc}") from None


def scan_archive(source: BinaryIO, limits: BundleSettings, sink: Sink) -> TarReader:
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


def check_archive(path: Path, limits: BundleSettings) -> AppManifest:
    """Decode and check the whole archive without writing; return its app manifest."""
    sink = ManifestSink()
    with path.open("rb") as f:
        scan_archive(f, limits, sink)
    return sink.manifest()


class _Extractor:
    def __init__(self, root: Path) -> None:
        self.root = str(root)
        self._fd = -1
        self._dirs: set[str] = {self.root}

    def _ensure_dir(self, path: str) -> None:
        if path not in self._dirs:
            os.makedirs(path, mode=0o700, exist_ok=True)
            self._dirs.add(path)

    def start(self, entry: Entry) -> None:
        path = os.path.join(self.root, *entry.name.split("/"))
        if entry.is_dir:
            self._ensure_dir(path)
            return
        self._ensure_dir(os.path.dirname(path))
        # Created with its final, read-only mode: the descriptor we hold may still write. Readable
        # by all: workers run under uids of their own, and a bundle is shared code, not a secret
        # (the data directory around it, 0700, is what keeps other users out).
        self._fd = os.open(path, _OPEN_FLAGS, READ_ONLY_EXEC if entry.mode & 0o111 else READ_ONLY)

    def data(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:
            view = view[os.write(self._fd, view) :]

    def end(self, entry: Entry) -> None:
        self.close()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def make_read_only(self) -> None:
        # Deepest first, so no directory is locked before its children are done. The root stays
        # writable until it is renamed into place: moving a directory to another parent updates
        # its ".." entry, which needs write permission on it.
        for path in sorted(self._dirs - {self.root}, key=len, reverse=True):
            os.chmod(path, READ_ONLY_EXEC)


def make_writable(path: Path) -> None:
    """Undo ``make_read_only`` so a tree can be deleted."""
    if not path.exists():
        return
    for dirpath, _dirnames, _files in os.walk(path):
        os.chmod(dirpath, stat.S_IRWXU)


def remove_tree(path: Path) -> None:
    make_writable(path)
    shutil.rmtree(path, ignore_errors=True)


def unpack_archive(
    archive: Path, destination: Path, temp_dir: Path, limits: BundleSettings
) -> Path:
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
        os.chmod(destination, READ_ONLY_EXEC)
    except BaseException:
        remove_tree(staging)
        raise
    return destination


def load_app_manifest(directory: Path) -> AppManifest:
    """Read and validate ``directory/bundle.toml`` (a source tree, or an unpacked bundle)."""
    path = Path(directory) / MANIFEST_NAME
    if path.is_symlink() or not path.is_file():
        raise ManifestInvalid(f"{MANIFEST_NAME}: missing (every bundle needs one at its root)")
    with path.open("rb") as f:
        raw = f.read(MANIFEST_BYTES_MAX + 1)
    if len(raw) > MANIFEST_BYTES_MAX:
        raise ManifestInvalid(f"{MANIFEST_NAME}: larger than {MANIFEST_BYTES_MAX} bytes")
    return parse_app_manifest(raw)
