from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from disruptor.bundles.settings import BundleSettings
from disruptor.bundles.tarstream import (
    ArchiveEnd,
    EntryEnd,
    EntryStart,
    Event,
    FileData,
    TarReader,
)
from disruptor.errors import ArchiveUnsafe

from .archives import END, directory, header, member, pad, pax, tar


def read(data: bytes, limits: BundleSettings | None = None, step: int = 0) -> list[Event]:
    reader = TarReader(limits or BundleSettings())
    events: list[Event] = []
    if step:
        for i in range(0, len(data), step):
            events += reader.feed(data[i : i + step])
    else:
        events += reader.feed(data)
    reader.finish()
    return events


def files(events: list[Event]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    current = ""
    for event in events:
        if isinstance(event, EntryStart):
            current = event.entry.name
            out[current] = b""
        elif isinstance(event, FileData):
            out[current] += event.data
    return out


GOOD = tar(
    directory("app/"),
    member("app/a.txt", b"alpha" * 300),
    member("app/empty", b""),
    pax({"path": "app/" + "x" * 150}),
    member("ignored-name", b"long"),
    header("././@LongLink", typeflag=b"L", size=120, magic=b"ustar  \0")
    + pad(b"app/" + b"y" * 115 + b"\0"),
    member("short", b"gnu", magic=b"ustar  \0"),
    member("c.py", b"x", prefix=b"app/sub"),
)


def test_reads_ustar_pax_and_gnu_names() -> None:
    events = read(GOOD)
    assert isinstance(events[-1], ArchiveEnd)
    got = files(events)
    assert got["app/a.txt"] == b"alpha" * 300
    assert got["app/empty"] == b""
    assert got["app/" + "x" * 150] == b"long"
    assert got["app/" + "y" * 115] == b"gnu"
    assert got["app/sub/c.py"] == b"x"
    assert sum(isinstance(e, EntryEnd) for e in events) == len(got)


def test_the_tar_cli_spelling_of_the_root_is_accepted() -> None:
    got = files(read(tar(directory("./"), directory("./lib/"), member("./lib/x.py", b"1"))))
    assert got == {"lib": b"", "lib/x.py": b"1"}
    with pytest.raises(ArchiveUnsafe, match="duplicate"):
        read(tar(member("./a", b"1"), member("a", b"2")))
    with pytest.raises(ArchiveUnsafe, match=r"'\.\.'"):
        read(tar(member("./../a", b"1")))


@pytest.mark.parametrize("step", [1, 7, 511, 512, 513, 4096])
def test_any_split_of_the_input_gives_the_same_files(step: int) -> None:
    assert files(read(GOOD, step=step)) == files(read(GOOD))


@pytest.mark.parametrize(
    ("archive", "reason"),
    [
        (tar(member("/etc/passwd", b"x")), "absolute"),
        (tar(member("../evil", b"x")), r"'\.\.'"),
        (tar(member("a/../../evil", b"x")), r"'\.\.'"),
        (tar(member("a//b", b"x")), "empty"),
        (tar(member("a/./b", b"x")), r"'\.'"),
        (tar(member("a\\..\\b", b"x")), "backslash"),
        (tar(pax({"path": "../../escape"}), member("fine", b"x")), r"'\.\.'"),
        (tar(header("link", typeflag=b"2", linkname=b"/etc/passwd")), "symbolic link"),
        (tar(header("link", typeflag=b"2", linkname=b"inside")), "symbolic link"),
        (tar(member("a", b"x"), header("hard", typeflag=b"1", linkname=b"a")), "hard link"),
        (tar(header("dev", typeflag=b"3")), "character device"),
        (tar(header("blk", typeflag=b"4")), "block device"),
        (tar(header("fifo", typeflag=b"6")), "FIFO"),
        (tar(header("sparse", typeflag=b"S")), "sparse"),
        (tar(pax({"GNU.sparse.map": "0,1"}), member("s", b"x")), "sparse"),
        (tar(pax({"linkpath": "/etc"}), member("s", b"x")), "links"),
        (tar(pax({"path": "x"}, typeflag=b"g"), member("s", b"x")), "global"),
        (tar(member("suid", b"x", mode=0o4755)), "set-uid"),
        (tar(member("sgid", b"x", mode=0o2755)), "set-uid"),
        (tar(directory("sticky/", mode=0o1777)), "set-uid"),
        (tar(member("a", b"1"), member("a", b"2")), "duplicate"),
        (tar(member("Readme", b"1"), member("README", b"2")), "case"),
        (tar(directory("lib/"), member("LIB/x", b"1")), "case"),
        (tar(member("a", b"1"), member("a/b", b"2")), "below a file"),
        (tar(member("a/b", b"1"), member("a", b"2")), "name of a directory"),
        (tar(member("a", b"1"), directory("a/")), "name of a file"),
        (tar(directory("d/"), directory("d/")), "duplicate"),
        (tar(member("Lib/x", b"1"), member("lib/y", b"2")), "'lib' collides with another spelling"),
        (tar(member("caf\u00e9", b"1"), member("cafe\u0301", b"2")), "case"),  # NFC equals
        (tar(header("x", typeflag=b"Z")), "entry type"),
        (tar(member(b"\xff\xfe", b"x")), "UTF-8"),
        (tar(header("dir/", typeflag=b"5", size=512) + b"\0" * 512), "directory with content"),
        (tar(member("x", b"1", checksum_delta=1)), "checksum"),
        (tar(member("x", b"1", magic=b"nope!\0")), "no ustar magic"),
        (b"this is not a tar archive at all" * 40, "no ustar magic"),
        (tar(member("x", b"1"), end=b""), "truncated"),
        (member("x", b"1")[:700], "truncated"),
        (tar(member("x", b"1"), end=b"\0" * 512), "truncated"),
        (tar(member("x", b"1")) + b"garbage", "trailing data"),
        (tar(member("x", b"1"), end=b"\0" * 512 + member("y", b"2")), "lone zero block"),
        (tar(pax({"path": "p"}), pax({"path": "q"}), member("s", b"x")), "two extended"),
        (
            tar(header("././@PaxHeader", typeflag=b"x", size=10 * 1024 * 1024)),
            "extended header",
        ),
        (tar(header("big", size=0o77777777777)), "larger than"),
    ],
)
def test_hostile_archives_are_refused(archive: bytes, reason: str) -> None:
    with pytest.raises(ArchiveUnsafe, match=reason):
        read(archive)


@pytest.mark.parametrize(
    "name",
    ["new\nline", "esc\x1b[2Jape", "bell\x07", "del\x7f", "c1\x9b31m", "line\u2028sep", "dir/\r/x"],
)
def test_names_with_control_characters_are_refused(name: str) -> None:
    # They would reach logs and terminals; the refusal shows the name escaped, never raw.
    with pytest.raises(ArchiveUnsafe, match="control character") as caught:
        read(tar(pax({"path": name}), member("placeholder", b"x")))
    assert not any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in str(caught.value))
    with pytest.raises(ArchiveUnsafe, match="control character"):
        read(tar(member(name, b"x")))


def test_a_refused_entry_type_names_its_entry_escaped() -> None:
    with pytest.raises(ArchiveUnsafe, match="symbolic link") as caught:
        read(tar(header("\x1b]0;pwned\x07", typeflag=b"2", linkname=b"x")))
    assert "\x1b" not in str(caught.value) and "\\x1b" in str(caught.value)


@pytest.mark.parametrize(
    "records",
    [
        {"size": "9" * 5000},  # int() would refuse it past 4300 digits: a 500, not a 422
        {"size": "\u00b2"},  # a Unicode digit that int() does not take
        {"size": "\u0664\u0662"},  # Arabic-Indic digits int() would take
        {"size": "-1"},
        {"size": " 12"},
        {"size": ""},
    ],
)
def test_pax_sizes_must_be_a_few_ascii_digits(records: dict[str, str]) -> None:
    with pytest.raises(ArchiveUnsafe, match="pax size"):
        read(tar(pax(records), member("x", b"")))


@pytest.mark.parametrize("length", [b"9" * 5000, "\u00b2".encode(), b"+12", b"0x1f", b"1_0"])
def test_pax_record_lengths_must_be_a_few_ascii_digits(length: bytes) -> None:
    body = length + b" path=x\n"
    archive = tar(header("././@PaxHeader", typeflag=b"x", size=len(body)) + pad(body))
    with pytest.raises(ArchiveUnsafe, match="pax header record"):
        read(archive + member("x", b""))


def test_deep_long_names_are_refused_once_their_memory_budget_is_spent() -> None:
    # The shape that once held gigabytes: many paths of 62 levels of 63-character parts, each
    # part new. Each path costs 62 nodes; the budget runs out after a few of them.
    budget = 64 * 1024
    limits = BundleSettings(names_bytes_max=budget)
    reader = TarReader(limits)
    with pytest.raises(ArchiveUnsafe, match="names need more than 65536 bytes"):
        for i in range(1000):
            name = "/".join(f"{i:04d}{level:02d}" + "p" * 57 for level in range(62))
            reader.feed(pax({"path": name}) + member("ignored", b""))
    assert reader.names.used_bytes <= budget
    assert reader.entries < 20


def test_base256_sizes_are_refused() -> None:
    block = bytearray(header("x", size=1))
    block[124] = 0x80
    block[148:156] = b" " * 8
    block[148:156] = f"{sum(block):06o}".encode() + b"\0 "
    with pytest.raises(ArchiveUnsafe, match="base-256"):
        read(bytes(block) + END)


def test_limits_on_count_size_and_paths() -> None:
    small = BundleSettings(
        file_count_max=3,
        file_bytes_max=100,
        unpacked_bytes_max=150,
        path_bytes_max=20,
        path_depth_max=3,
    )
    with pytest.raises(ArchiveUnsafe, match="more than 3 entries"):
        read(tar(*(member(f"f{i}", b"x") for i in range(4))), small)
    with pytest.raises(ArchiveUnsafe, match="larger than 100"):
        read(tar(member("big", b"x" * 101)), small)
    with pytest.raises(ArchiveUnsafe, match="exceeds 150"):
        read(tar(member("a", b"x" * 80), member("b", b"x" * 80)), small)
    with pytest.raises(ArchiveUnsafe, match="longer than 20"):
        read(tar(member("n" * 21, b"x")), small)
    with pytest.raises(ArchiveUnsafe, match="deeper than 3"):
        read(tar(member("a/b/c/d", b"x")), small)
    with pytest.raises(ArchiveUnsafe, match="255 bytes"):
        read(tar(pax({"path": "z" * 256}), member("p", b"x")))


def test_size_is_refused_before_its_bytes_are_read() -> None:
    # Only the header is fed: the refusal cannot have waited for 10 GB of content.
    reader = TarReader(BundleSettings(file_bytes_max=1024))
    with pytest.raises(ArchiveUnsafe, match="larger than 1024"):
        reader.feed(header("huge", size=10 * 1024**3))


def test_zero_padding_after_the_end_is_fine_but_bounded() -> None:
    read(tar(member("x", b"1")) + b"\0" * 9000)
    with pytest.raises(ArchiveUnsafe, match="trailing data"):
        read(tar(member("x", b"1")) + b"\0" * (2 * 1024 * 1024))


@settings(max_examples=300, deadline=None)
@given(
    body=st.binary(max_size=300)
    | st.builds(
        lambda length, key, value: length + b" " + key + b"=" + value + b"\n",
        st.text(max_size=30).map(lambda t: t.encode()),
        st.sampled_from([b"path", b"size", b"mtime", b"linkpath", b"x"]),
        st.text(max_size=40).map(lambda t: t.encode()),
    ),
    name=st.text(max_size=120),
)
def test_any_pax_header_gives_entries_or_archive_unsafe(body: bytes, name: str) -> None:
    archive = tar(
        header("././@PaxHeader", typeflag=b"x", size=len(body)) + pad(body),
        member(name.encode("utf-8", "surrogatepass")[:100] or b"x", b"data"),
    )
    with contextlib.suppress(ArchiveUnsafe):
        read(archive)
