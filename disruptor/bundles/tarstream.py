"""A sans-IO tar reader that accepts only what a bundle may hold: regular files and directories.

Bytes go in with ``feed``; events come out: ``EntryStart(entry)``, ``FileData(chunk)``, ``EntryEnd``
and finally ``ArchiveEnd``. It reads ustar, GNU (long names) and pax (``path``/``size``) headers
itself rather than trusting ``tarfile``, and every check is made here, before a byte is written:

* names: UTF-8, relative, no ``..``/``.``/empty parts, no backslash and no control character
  (NUL, newline, ESC...: names reach logs and terminals), bounded length and depth;
* types: regular files and directories only (links, hard links, devices, FIFOs, sparse files and
  global headers are refused), no set-uid, set-gid or sticky bits;
* no duplicate names, no names that collide when case-folded, no entry below a file (checked by
  ``NameIndex``, whose memory is bounded by ``names_bytes_max`` whatever the names);
* numbers: octal header fields and pax decimals are ASCII digits of bounded length;
* limits: file size, total size, entry count, header sizes, trailing bytes after the end marker;
* the end-of-archive marker must be present (``finish`` raises on a truncated archive), and only
  zero padding may follow it.

Rule: anything not understood is refused with ``ArchiveUnsafe`` naming the entry and the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ArchiveUnsafe
from .names import NameIndex
from .settings import BundleSettings

BLOCK = 512
# Extended headers (pax records, GNU long names) are small; a large one is an attack.
EXTENDED_HEADER_BYTES_MAX = 64 * 1024
# Zero padding allowed after the end marker (tar pads to 10 KiB records; be generous).
TRAILING_ZERO_BYTES_MAX = 1024 * 1024
COMPONENT_BYTES_MAX = 255
_OCTAL = re.compile(rb"[0-7]+")
# Path components the name check may walk, per entry allowed (``NameIndex.walk_steps_max``). An
# archive that keeps each directory's entries together (``disruptor pack``, tar) walks about a
# quarter of a component per entry (measured on a site-packages tree: 0.27), so 4 leaves room.
NAME_WALK_STEPS_PER_ENTRY = 4
# pax decimals (record lengths, sizes): ASCII digits only, and few of them. Twenty digits exceed
# every size a bundle may have; more would only make ``int`` work (or refuse past 4300 digits).
DECIMAL_DIGITS_MAX = 20
_DECIMAL = re.compile(rb"[0-9]{1,%d}" % DECIMAL_DIGITS_MAX)
# Refused in names: control characters (Unicode category Cc: U+0000-U+001F and U+007F-U+009F,
# so NUL, newline, ESC, DEL and the C1 range) and the line and paragraph separators (Zl, Zp),
# which a log line or a terminal would act on. A character class: checked at C speed.
_REFUSED_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")

_REGULAR = {b"0", b"\0", b"7"}
_REFUSED_TYPES = {
    b"1": "a hard link",
    b"2": "a symbolic link",
    b"3": "a character device",
    b"4": "a block device",
    b"6": "a FIFO",
    b"K": "a long link name",
    b"S": "a sparse file",
    b"g": "a global pax header",
    b"V": "a volume header",
    b"M": "a multi-volume continuation",
}
_PAX_IGNORED = {
    "mtime", "atime", "ctime", "uid", "gid", "uname", "gname", "comment", "hdrcharset", "charset",
}  # fmt: skip


@dataclass(frozen=True)
class Entry:
    name: str
    is_dir: bool
    mode: int
    size: int


@dataclass(frozen=True)
class EntryStart:
    entry: Entry


@dataclass(frozen=True)
class FileData:
    data: bytes


@dataclass(frozen=True)
class EntryEnd:
    entry: Entry


@dataclass(frozen=True)
class ArchiveEnd:
    pass


Event = EntryStart | FileData | EntryEnd | ArchiveEnd


def _octal(field: bytes, what: str) -> int:
    if field[:1] and field[0] & 0x80:
        raise ArchiveUnsafe(f"{what} uses base-256 encoding, which bundles never need")
    text = field.split(b"\0", 1)[0].strip(b" ")
    if not text:
        return 0
    if not _OCTAL.fullmatch(text):
        raise ArchiveUnsafe(f"not a tar archive: {what} is not an octal number")
    return int(text, 8)


def decimal(text: bytes, what: str) -> int:
    """A pax decimal: ASCII digits only, at most ``DECIMAL_DIGITS_MAX`` of them."""
    if not _DECIMAL.fullmatch(text):
        raise ArchiveUnsafe(
            f"{what} is not a decimal number of at most {DECIMAL_DIGITS_MAX} digits"
        )
    return int(text)


def control_character(name: str) -> str | None:
    """The first character of ``name`` that must not appear in a member name, if any."""
    found = _REFUSED_CHARACTERS.search(name)
    return found.group() if found else None


def _checksum_ok(block: bytes) -> bool:
    stored = _octal(block[148:156], "header checksum")
    unsigned = sum(block[:148]) + 8 * 0x20 + sum(block[156:])
    if stored == unsigned:
        return True
    # Some old tars summed the bytes as signed chars.
    high = sum(1 for c in block[:148] + block[156:] if c > 127)
    return stored == unsigned - 256 * high


def _parse_pax(data: bytes) -> dict[str, str]:
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        length_text = data[pos:space] if space > 0 else b""
        end = pos + decimal(length_text, "the length of a pax header record")
        if end > len(data) or end <= space or data[end - 1 : end] != b"\n":
            raise ArchiveUnsafe("malformed pax header record")
        key, sep, value = data[space + 1 : end - 1].partition(b"=")
        if not sep:
            raise ArchiveUnsafe("malformed pax header record")
        try:
            records[key.decode("utf-8")] = value.decode("utf-8")
        except UnicodeDecodeError:
            raise ArchiveUnsafe("pax header record is not UTF-8") from None
        pos = end
    return records


class TarReader:
    """Push parser over a decompressed tar stream; see the module docstring for what it refuses."""

    def __init__(self, limits: BundleSettings) -> None:
        self.limits = limits
        self._pending = bytearray()
        self._state = "header"
        self._zero_blocks = 0
        self._ext_kind = b""
        self._ext_left = 0
        self._ext = bytearray()
        self._skip_after_ext = 0
        self._pax: dict[str, str] = {}
        self._long_name: str | None = None
        self._entry: Entry | None = None
        self._data_left = 0
        self._skip_left = 0
        self._trailing = 0
        self.entries = 0
        self.total_bytes = 0
        self.names = NameIndex(
            limits.names_bytes_max, limits.file_count_max * NAME_WALK_STEPS_PER_ENTRY
        )

    @property
    def ended(self) -> bool:
        return self._state == "end"

    def feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        view = memoryview(data)
        pos = 0
        while pos < len(view):
            state = self._state
            if state == "data":
                n = min(self._data_left, len(view) - pos)
                events.append(FileData(bytes(view[pos : pos + n])))
                pos += n
                self._data_left -= n
                if self._data_left == 0:
                    self._end_file(events)
            elif state == "skip":
                n = min(self._skip_left, len(view) - pos)
                pos += n
                self._skip_left -= n
                if self._skip_left == 0:
                    self._state = "header"
            elif state == "ext":
                n = min(self._ext_left, len(view) - pos)
                self._ext += view[pos : pos + n]
                pos += n
                self._ext_left -= n
                if self._ext_left == 0:
                    self._end_extended()
            elif state == "end":
                rest = view[pos:]
                self._trailing += len(rest)
                if any(rest.tobytes()) or self._trailing > TRAILING_ZERO_BYTES_MAX:
                    raise ArchiveUnsafe("trailing data after the end of the tar archive")
                pos = len(view)
            else:
                n = min(BLOCK - len(self._pending), len(view) - pos)
                self._pending += view[pos : pos + n]
                pos += n
                if len(self._pending) == BLOCK:
                    block = bytes(self._pending)
                    self._pending.clear()
                    self._on_block(block, events)
        return events

    def finish(self) -> None:
        """Call at the end of input: raises unless the end-of-archive marker was seen."""
        if self._state != "end":
            raise ArchiveUnsafe("truncated tar archive: the stream ends before its end marker")

    def _on_block(self, block: bytes, events: list[Event]) -> None:
        if not any(block):
            if self._pax or self._long_name is not None:
                raise ArchiveUnsafe("extended header not followed by an entry")
            self._zero_blocks += 1
            if self._zero_blocks == 2:
                self._state = "end"
                events.append(ArchiveEnd())
            return
        if self._zero_blocks:
            raise ArchiveUnsafe("a lone zero block inside the tar archive")
        magic = block[257:263]
        if magic not in (b"ustar\0", b"ustar "):
            raise ArchiveUnsafe("not a tar archive (no ustar magic)")
        if not _checksum_ok(block):
            raise ArchiveUnsafe("not a tar archive: header checksum mismatch")
        typeflag = block[156:157]
        size = _octal(block[124:136], "entry size")
        if typeflag in (b"x", b"L"):
            if self._ext_kind == typeflag or (typeflag == b"L" and self._long_name is not None):
                raise ArchiveUnsafe("two extended headers of one kind in a row")
            if size > EXTENDED_HEADER_BYTES_MAX:
                raise ArchiveUnsafe(f"extended header of {size} bytes is too large")
            self._ext_kind, self._ext_left = typeflag, size
            self._ext.clear()
            self._skip_after_ext = -size % BLOCK
            if size == 0:
                self._end_extended()
            else:
                self._state = "ext"
            return
        self._ext_kind = b""
        name = self._name_of(block, magic)
        # Until the name is checked it is shown escaped: it may hold anything, ESC included.
        label = repr(name[:200])
        if "size" in self._pax:
            size = decimal(self._pax["size"].encode(), f"{label}: its pax size")
        self._pax = {}
        self._long_name = None
        if typeflag in _REFUSED_TYPES:
            raise ArchiveUnsafe(f"{label}: {_REFUSED_TYPES[typeflag]} is not allowed in a bundle")
        is_dir = typeflag == b"5"
        if not is_dir and typeflag not in _REGULAR:
            raise ArchiveUnsafe(f"{label}: entry type {typeflag!r} is not allowed in a bundle")
        mode = _octal(block[100:108], "mode")
        if mode & 0o7000:
            raise ArchiveUnsafe(f"{label}: set-uid, set-gid or sticky bits are not allowed")
        if is_dir and size:
            raise ArchiveUnsafe(f"{label}: a directory with content")
        # ``tar -C dir .`` names the root "./" and everything "./x": accept that one spelling.
        if is_dir and name in (".", "./"):
            return
        name = name.removeprefix("./")
        entry = Entry(self._check_name(name, is_dir), is_dir, mode & 0o777, size)
        self._admit(entry)
        events.append(EntryStart(entry))
        if is_dir or size == 0:
            self._entry = entry
            self._end_file(events, padding=0)
        else:
            self._entry = entry
            self._data_left = size
            self._state = "data"

    def _end_extended(self) -> None:
        data = bytes(self._ext)
        if self._ext_kind == b"L":
            self._long_name = self._decode(data.split(b"\0", 1)[0], "long name")
        else:
            pax = _parse_pax(data)
            for key in pax:
                if key.startswith("GNU.sparse"):
                    raise ArchiveUnsafe("sparse files are not allowed in a bundle")
                if key == "linkpath":
                    raise ArchiveUnsafe("links are not allowed in a bundle")
            self._pax = {k: v for k, v in pax.items() if k in {"path", "size"}}
        self._skip_left = self._skip_after_ext
        self._state = "skip" if self._skip_left else "header"

    def _end_file(self, events: list[Event], padding: int | None = None) -> None:
        assert self._entry is not None
        events.append(EntryEnd(self._entry))
        self._skip_left = -self._entry.size % BLOCK if padding is None else padding
        self._entry = None
        self._state = "skip" if self._skip_left else "header"

    def _name_of(self, block: bytes, magic: bytes) -> str:
        if "path" in self._pax:
            return self._pax["path"]
        if self._long_name is not None:
            return self._long_name
        raw = block[0:100].split(b"\0", 1)[0]
        if (
            magic == b"ustar\0"
        ):  # POSIX ustar keeps a 155-byte prefix; GNU uses that space otherwise
            prefix = block[345:500].split(b"\0", 1)[0]
            if prefix:
                raw = prefix + b"/" + raw
        return self._decode(raw, "name")

    @staticmethod
    def _decode(raw: bytes, what: str) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ArchiveUnsafe(f"entry {what} {raw[:80]!r} is not UTF-8") from None

    def _check_name(self, name: str, is_dir: bool) -> str:
        shown = repr(name[:200])
        if is_dir and name.endswith("/"):
            name = name[:-1]
        if not name:
            raise ArchiveUnsafe("an entry with an empty name")
        if name.startswith("/"):
            raise ArchiveUnsafe(f"{shown}: absolute paths are not allowed")
        if "\\" in name:
            raise ArchiveUnsafe(f"{shown}: a backslash in a name")
        refused = control_character(name)
        if refused is not None:
            raise ArchiveUnsafe(f"{shown}: a control character ({refused!r}) in a name")
        if len(name.encode()) > self.limits.path_bytes_max:
            raise ArchiveUnsafe(f"{shown}: path longer than {self.limits.path_bytes_max} bytes")
        parts = name.split("/")
        if len(parts) > self.limits.path_depth_max:
            raise ArchiveUnsafe(f"{shown}: deeper than {self.limits.path_depth_max} levels")
        for part in parts:
            if part in ("", ".", ".."):
                raise ArchiveUnsafe(f"{shown}: '..', '.' or empty path components")
            if len(part.encode()) > COMPONENT_BYTES_MAX:
                raise ArchiveUnsafe(f"{shown}: a path component longer than 255 bytes")
        return name

    def _admit(self, entry: Entry) -> None:
        """Apply the count, size and name-collision rules to one more entry."""
        limits = self.limits
        self.entries += 1
        if self.entries > limits.file_count_max:
            raise ArchiveUnsafe(f"more than {limits.file_count_max} entries")
        if entry.size > limits.file_bytes_max:
            raise ArchiveUnsafe(f"{entry.name}: larger than {limits.file_bytes_max} bytes")
        self.total_bytes += entry.size
        if self.total_bytes > limits.unpacked_bytes_max:
            raise ArchiveUnsafe(f"unpacked size exceeds {limits.unpacked_bytes_max} bytes")
        self.names.add(entry.name, entry.is_dir)
