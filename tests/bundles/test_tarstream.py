from __future__ import annotations

import pytest

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
        (tar(member("a/b", b"1"), member("a", b"2")), "case"),
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
