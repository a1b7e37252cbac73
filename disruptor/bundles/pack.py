"""Deterministic packing: an app directory in, the same ``.tar.zst`` bytes out every time.

Rule: nothing about the machine or the moment leaks into the archive. Entries are sorted by name;
times are 0; owners are 0/0 with empty names; modes are 0755 for directories and executables and
0644 otherwise; caches, VCS folders and bytecode are left out; only regular files and directories
are stored (a symlink to a file inside the tree is stored as that file; any other link, device or
FIFO is an error). The zstd frame is written single-threaded at a fixed level with a checksum, so
the bundle's name, the SHA-1 of these bytes, depends on the directory's content alone.
"""

from __future__ import annotations

import hashlib
import os
import queue
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, cast

import zstandard

from ..errors import ArchiveUnsafe
from .manifest import AppManifest
from .tarstream import control_character
from .unpack import load_app_manifest

ZSTD_LEVEL = 3
BLOCK_BYTES = 512
RECORD_BYTES = 20 * BLOCK_BYTES
# Names never packed: caches, VCS metadata, editor and OS droppings.
EXCLUDED_NAMES = frozenset(
    {
        "__pycache__",
        ".git",
        ".hg",
        ".svn",
        ".bzr",
        ".DS_Store",
        "Thumbs.db",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
        ".nox",
        ".venv",
    }
)
EXCLUDED_SUFFIXES = (".pyc", ".pyo")
_COPY_BUFFER_BYTES = 1024 * 1024
# Chunks in flight between the reading and the compressing thread (bounds memory to a few MiB).
_PIPELINE_DEPTH = 4


@dataclass(frozen=True)
class PackResult:
    sha1: str
    sha256: str
    size: int
    manifest: AppManifest


class _HashingWriter:
    """Counts and hashes every byte on its way to ``out``."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self.sha1 = hashlib.sha1()  # noqa: S324 - the content address, not the integrity check
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha1.update(data)
        self.sha256.update(data)
        self.size += len(data)
        self._out.write(data)
        return len(data)


def is_excluded(name: str) -> bool:
    return name in EXCLUDED_NAMES or name.endswith(EXCLUDED_SUFFIXES)


def normalised_mode(st_mode: int) -> int:
    if stat.S_ISDIR(st_mode) or st_mode & 0o111:
        return 0o755
    return 0o644


def iter_tree(root: Path) -> list[tuple[str, Path, bool]]:
    """``(archive name, real path, is_dir)`` for every entry to pack, in archive order."""
    root = root.resolve()
    entries: list[tuple[str, Path, bool]] = []

    def walk(directory: Path, prefix: str) -> None:
        with os.scandir(directory) as it:
            children = sorted(it, key=lambda e: e.name.encode("utf-8", "surrogateescape"))
        for child in children:
            if is_excluded(child.name):
                continue
            name = prefix + child.name
            path = Path(child.path)
            if control_character(child.name) is not None:
                # The peer would refuse the archive; say so here, naming the file.
                raise ArchiveUnsafe(f"{name!r}: a control character in a name cannot be packed")
            if child.is_symlink():
                target = path.resolve()
                if not target.is_relative_to(root) or not target.is_file():
                    raise ArchiveUnsafe(
                        f"{name}: a symlink to {os.readlink(path)!r}; only symlinks to files "
                        "inside the directory can be packed (they are stored as copies)"
                    )
                entries.append((name, target, False))
            elif child.is_dir(follow_symlinks=False):
                entries.append((name, path, True))
                walk(path, name + "/")
            elif child.is_file(follow_symlinks=False):
                entries.append((name, path, False))
            else:
                raise ArchiveUnsafe(f"{name}: not a regular file or directory")

    walk(root, "")
    return entries


def pack_directory(source: Path, out: BinaryIO, *, level: int = ZSTD_LEVEL) -> PackResult:
    """Write ``source`` as a deterministic ``.tar.zst`` to ``out``; validates its manifest."""
    source = Path(source)
    if not source.is_dir():
        raise ArchiveUnsafe(f"{source}: not a directory")
    manifest = load_app_manifest(source)
    hashing = _HashingWriter(out)
    compressor = zstandard.ZstdCompressor(level=level, write_checksum=True, threads=0)
    with compressor.stream_writer(cast(BinaryIO, hashing), closefd=False) as zout:
        pipe = _Pipeline(zout)
        try:
            written = 0
            for name, path, is_dir in iter_tree(source):
                written += _add(pipe, name, path, is_dir)
            # End of archive: two zero blocks, then zeros up to a whole 10 KiB record, as tar does.
            end = 2 * BLOCK_BYTES
            pipe.write(bytes(end + (-(written + end) % RECORD_BYTES)))
        finally:
            pipe.close()
    return PackResult(
        sha1=hashing.sha1.hexdigest(),
        sha256=hashing.sha256.hexdigest(),
        size=hashing.size,
        manifest=manifest,
    )


class _Writer(Protocol):
    def write(self, data: bytes, /) -> object: ...


class _Pipeline:
    """Hands the tar stream to a thread that compresses and hashes it, in order.

    Reading files and compressing then overlap (zstd and hashlib release the GIL), as ``tar``
    piped into ``zstd`` does; the bytes and their order are exactly those of a plain loop.
    """

    def __init__(self, out: _Writer) -> None:
        self._out = out
        self._buffer = bytearray()
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=_PIPELINE_DEPTH)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="pack-compress", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._out.write(chunk)
                except BaseException as exc:  # re-raised in the packing thread
                    self._error = exc

    def write(self, data: bytes) -> None:
        if self._error is not None:
            raise self._error
        self._buffer += data
        if len(self._buffer) >= _COPY_BUFFER_BYTES:
            self._queue.put(bytes(self._buffer))
            self._buffer.clear()

    def close(self) -> None:
        if self._buffer:
            self._queue.put(bytes(self._buffer))
            self._buffer.clear()
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error


def _octal(value: int, width: int) -> bytes:
    return b"%0*o\0" % (width - 1, value)


def ustar_header(name: bytes, *, mode: int, size: int, typeflag: bytes) -> bytes:
    """One POSIX ustar header block: times 0, owners 0/0 with empty names."""
    block = bytearray(BLOCK_BYTES)
    block[0 : len(name)] = name
    block[100:108] = _octal(mode, 8)
    block[108:116] = _octal(0, 8)
    block[116:124] = _octal(0, 8)
    block[124:136] = _octal(size, 12)
    block[136:148] = _octal(0, 12)
    block[148:156] = b" " * 8
    block[156:157] = typeflag
    block[257:265] = b"ustar\x0000"
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def _pax_path(name: bytes) -> bytes:
    """A pax extended header carrying a path too long for the 100-byte ustar field."""
    record = b" path=" + name + b"\n"
    length = len(record) + len(str(len(record)))
    if len(str(length)) != len(str(len(record))):
        length += 1
    body = str(length).encode() + record
    return (
        ustar_header(b"././@PaxHeader", mode=0o644, size=len(body), typeflag=b"x")
        + body
        + bytes(-len(body) % BLOCK_BYTES)
    )


def _add(out: _Writer, name: str, path: Path, is_dir: bool) -> int:
    """Write one entry; returns the bytes written (for the final record padding)."""
    raw = name.encode("utf-8", "surrogateescape") + (b"/" if is_dir else b"")
    prefix = _pax_path(raw) if len(raw) > 100 else b""
    short = raw if len(raw) <= 100 else raw[:100]
    if is_dir:
        head = prefix + ustar_header(short, mode=0o755, size=0, typeflag=b"5")
        out.write(head)
        return len(head)
    with path.open("rb") as f:
        st = os.fstat(f.fileno())
        size = st.st_size
        head = prefix + ustar_header(
            short, mode=normalised_mode(st.st_mode), size=size, typeflag=b"0"
        )
        out.write(head)
        left = size
        while left > 0:
            chunk = f.read(min(_COPY_BUFFER_BYTES, left))
            if not chunk:
                raise ArchiveUnsafe(f"{name}: shrank while being packed")
            out.write(chunk)
            left -= len(chunk)
    padding = bytes(-size % BLOCK_BYTES)
    out.write(padding)
    return len(head) + size + len(padding)


def pack_to_file(source: Path, destination: Path, *, level: int = ZSTD_LEVEL) -> PackResult:
    """Pack into ``destination`` (written beside it first, renamed into place when complete)."""
    destination = Path(destination)
    temp = destination.with_name(f".{destination.name}.partial")
    try:
        with temp.open("wb") as f:
            result = pack_directory(source, f, level=level)
        temp.replace(destination)
    finally:
        temp.unlink(missing_ok=True)
    return result
