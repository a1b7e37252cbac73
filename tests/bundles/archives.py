"""Test helpers: app directories, and hand-made (often hostile) tar streams, byte by byte."""

from __future__ import annotations

from pathlib import Path

import zstandard

MANIFEST = 'name = "demo"\nversion = "1.0"\n\n[worker]\nhandler = "demo:handle"\n'


def make_app(root: Path, extra: dict[str, bytes] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "bundle.toml").write_text(MANIFEST)
    (root / "demo.py").write_text("def handle(item):\n    return item\n")
    (root / "pkg").mkdir(exist_ok=True)
    (root / "pkg" / "data.txt").write_bytes(b"hello\n" * 100)
    for name, data in (extra or {}).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def _octal(value: int, width: int) -> bytes:
    return f"{value:0{width - 1}o}".encode() + b"\0"


def header(
    name: str | bytes,
    *,
    typeflag: bytes = b"0",
    size: int = 0,
    mode: int = 0o644,
    linkname: bytes = b"",
    magic: bytes = b"ustar\x0000",
    prefix: bytes = b"",
    checksum_delta: int = 0,
) -> bytes:
    raw_name = name.encode() if isinstance(name, str) else name
    block = bytearray(512)
    block[0 : len(raw_name[:100])] = raw_name[:100]
    block[100:108] = _octal(mode, 8)
    block[108:116] = _octal(0, 8)
    block[116:124] = _octal(0, 8)
    block[124:136] = _octal(size, 12)
    block[136:148] = _octal(0, 12)
    block[148:156] = b" " * 8
    block[156:157] = typeflag
    block[157 : 157 + len(linkname)] = linkname
    block[257 : 257 + len(magic)] = magic
    block[345 : 345 + len(prefix)] = prefix
    checksum = sum(block) + checksum_delta
    block[148:156] = f"{checksum:06o}".encode() + b"\0 "
    return bytes(block)


def pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 512)


def member(name: str | bytes, data: bytes = b"", **kw: object) -> bytes:
    return header(name, size=len(data), **kw) + pad(data)  # type: ignore[arg-type]


def directory(name: str, mode: int = 0o755) -> bytes:
    return header(name, typeflag=b"5", mode=mode)


def pax(records: dict[str, str], *, typeflag: bytes = b"x") -> bytes:
    body = b""
    for key, value in records.items():
        text = f" {key}={value}\n".encode()
        length = len(text) + len(str(len(text)))
        if len(str(length)) != len(str(len(text))):
            length += 1
        body += str(length).encode() + text
    return header("././@PaxHeader", typeflag=typeflag, size=len(body)) + pad(body)


END = b"\0" * 1024


def tar(*members: bytes, end: bytes = END) -> bytes:
    return b"".join(members) + end


def with_manifest(*members: bytes) -> bytes:
    return tar(member("bundle.toml", MANIFEST.encode()), *members)


def zst(data: bytes, **kw: int) -> bytes:
    return zstandard.ZstdCompressor(level=3, **kw).compress(data)


def deep_names(entries: int, depth: int = 62, part_chars: int = 63) -> bytes:
    """A tar of ``entries`` empty files, each named by ``depth`` levels of long, new parts.

    Every entry adds ``depth`` directories never seen before: the shape that makes a name check
    that keeps whole paths hold gigabytes for an archive of a few kilobytes.
    """
    out = []
    for i in range(entries):
        name = "/".join(f"{i:07d}{level:02d}".ljust(part_chars, "p") for level in range(depth))
        out.append(pax({"path": name}) + member("placeholder", b""))
    return tar(*out)
