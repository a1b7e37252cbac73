"""Own sections get versions; others' are fetched when their digest changes, checked, cached."""

from __future__ import annotations

import random

from disruptor.membership.meta import PeerLoad, PeerMeta, SectionId
from disruptor.membership.sections import FETCH_TRIES_MAX, LocalSections, SectionCache

BUNDLES = tuple(f"{i:040x}" for i in range(16))


def test_local_sections_raise_the_version_of_what_changed() -> None:
    local = LocalSections(0)
    assert local.update(PeerMeta(PeerLoad(1, 0, 0), BUNDLES, "1").sections(), 0)
    first = local.digest
    assert not local.update(PeerMeta(PeerLoad(1, 0, 0), BUNDLES, "1").sections(), 0)
    assert local.update(PeerMeta(PeerLoad(2, 0, 0), BUNDLES, "1").sections(), 0)
    second = local.digest
    assert second.newer_than(first)
    load1, load2 = first.stamp(SectionId.LOAD), second.stamp(SectionId.LOAD)
    bundles1, bundles2 = first.stamp(SectionId.BUNDLES), second.stamp(SectionId.BUNDLES)
    assert load1 is not None and load2 is not None and load2.version == load1.version + 1
    assert bundles1 == bundles2 and bundles1 is not None and bundles1.inline is None
    # A new incarnation alone makes a new digest (it must outbid digests of an earlier run).
    assert local.update(PeerMeta(PeerLoad(2, 0, 0), BUNDLES, "1").sections(), 5)
    assert local.digest.incarnation == 5


def test_cache_fetches_after_jitter_checks_the_digest_and_retries() -> None:
    owner = LocalSections(0)
    owner.update(PeerMeta(bundles=BUNDLES).sections(), 0)
    cache = SectionCache(jitter_s=1.0, retry_s=2.0)
    rng = random.Random(1)
    cache.note("p:1", owner.digest, 10.0, rng)
    assert cache.due(10.0) == [] or cache.next_deadline() == 10.0
    due_at = cache.next_deadline()
    assert 10.0 <= due_at <= 11.0
    [fetch] = cache.due(due_at)
    assert fetch.node == "p:1" and fetch.section == SectionId.BUNDLES
    assert cache.due(due_at) == []  # in flight
    # Wrong bytes are refused and retried later; failures too, up to the limit.
    assert not cache.fetched(fetch, b"not it", owner.digest, due_at)
    assert cache.next_deadline() == due_at + 2.0
    [fetch] = cache.due(due_at + 2.0)
    assert not cache.fetched(fetch, None, owner.digest, due_at + 2.0)
    [fetch] = cache.due(due_at + 4.0)
    content = owner.content(SectionId.BUNDLES)
    assert cache.fetched(fetch, content, owner.digest, due_at + 4.0)
    assert cache.meta("p:1", owner.digest).bundles == BUNDLES
    assert cache.current("p:1", owner.digest)
    assert cache.next_deadline() == float("inf")
    # Noting the same digest again wants nothing.
    cache.note("p:1", owner.digest, 20.0, rng)
    assert cache.next_deadline() == float("inf")
    assert cache.fetches == 3 and cache.fetches_failed == 1


def test_cache_gives_up_after_the_tries_and_forgets_a_peer() -> None:
    owner = LocalSections(0)
    owner.update(PeerMeta(bundles=BUNDLES).sections(), 0)
    cache = SectionCache(jitter_s=0.0, retry_s=1.0)
    cache.note("p:1", owner.digest, 0.0, random.Random(1))
    now = 0.0
    for _ in range(FETCH_TRIES_MAX):
        [fetch] = cache.due(now)
        cache.fetched(fetch, None, owner.digest, now)
        now += 1.0
    assert cache.due(now) == [] and cache.next_deadline() == float("inf")
    assert cache.meta("p:1", owner.digest).bundles == ()
    cache.forget("p:1")
    assert cache.content("p:1", SectionId.BUNDLES) is None
