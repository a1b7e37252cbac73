"""Metadata as sections: PeerMeta <-> section contents, digests and their wire form, bounded."""

from __future__ import annotations

import pytest

from disruptor.membership.meta import (
    SECTION_BYTES_MAX,
    SECTION_INLINE_BYTES_MAX,
    MetaDigest,
    PeerLoad,
    PeerMeta,
    SectionId,
    decode_digest,
    digest_of,
    encode_digest,
    meta_from_sections,
    stamp_for,
)
from disruptor.membership.wire import CodecError, Reader

BUNDLES = tuple(f"{i:040x}" for i in range(16))


def test_meta_round_trips_through_its_sections() -> None:
    meta = PeerMeta(PeerLoad(1, 2, 3), BUNDLES, "1.2.3")
    assert meta_from_sections(meta.sections()) == meta
    assert meta_from_sections({}) == PeerMeta()


def test_bounded_keeps_every_valid_bundle_sorted_and_cuts_to_the_section_limit() -> None:
    many = tuple(f"{i:040x}" for i in range(10_000))
    meta = PeerMeta(PeerLoad(-5, 10**12, 1), ("bad", *reversed(many[:100])), "v" * 99).bounded()
    assert meta.bundles == many[:100]
    assert meta.load.tasks_running == 0 and meta.load.queue_length == 1_000_000_000
    assert len(meta.version) == 24
    huge = PeerMeta(bundles=many).bounded()
    assert len(huge.sections()[SectionId.BUNDLES]) <= SECTION_BYTES_MAX


def test_small_sections_ride_inline_and_large_ones_as_digests() -> None:
    small = stamp_for(SectionId.LOAD, 4, b"\x01\x02\x03")
    assert small.inline == b"\x01\x02\x03" and small.digest == b""
    large = stamp_for(SectionId.BUNDLES, 2, b"x" * (SECTION_INLINE_BYTES_MAX + 1))
    assert large.inline is None and large.digest == digest_of(b"x" * (SECTION_INLINE_BYTES_MAX + 1))


def test_digests_round_trip_and_are_ordered_by_incarnation_then_seq() -> None:
    d = MetaDigest(3, 9, (stamp_for(1, 1, b"ab"), stamp_for(2, 7, b"y" * 100)))
    assert decode_digest(Reader(encode_digest(d)), 2**32 - 1) == d
    assert MetaDigest(3, 10).newer_than(d) and MetaDigest(4, 0).newer_than(d)
    assert not MetaDigest(3, 9).newer_than(d)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\x00\x11",  # 17 sections
        b"\x00\x00\x02\x02\x01\x00" + bytes(8) + b"\x01\x01\x00" + bytes(8),  # out of order
        b"\x00\x00\x01\x01\x01\x01\x19" + bytes(25),  # inline over the limit
        b"\x00\x00\x01\x01\x01\x07",  # unknown kind
        b"\x00\x00\x01\x01\x01\x00\x01\x02",  # digest cut short
    ],
)
def test_bad_digests_raise_codec_error(raw: bytes) -> None:
    with pytest.raises(CodecError):
        decode_digest(Reader(raw), 2**32 - 1)


def test_a_bad_section_reads_as_empty() -> None:
    meta = meta_from_sections({SectionId.LOAD: b"\xff", SectionId.BUNDLES: b"odd"})
    assert meta.load == PeerLoad() and meta.bundles == ()
