"""``MembershipDriver``: runs the protocol core for real (clock, UDP, HTTP push-pull, timers).

It feeds every datagram through the admission checks (size, authentication, replay window, rate per
authenticated sender; ``guard.Admission``) into the core, schedules one timer at the core's next
deadline, carries push-pull requests to ``POST /membership/sync`` on the target peer and metadata
section fetches to ``GET /membership/sections/<n>`` over the peer link (which signs them),
refreshes local metadata from the provider it was given, and tells subscribers about member
changes. Rule: no protocol decisions
here; a bad datagram is dropped and counted by reason, never raised.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..address import Address
from ..errors import DisruptorError, NotFound, PayloadTooLarge, ProtocolError
from ..link.peer_link import PeerLink
from .codec import (
    NONCE_BYTES,
    CodecError,
    Keyring,
    decode_sync,
    encode_packet,
    encode_sync,
)
from .guard import Admission
from .members import MemberView
from .messages import Packet, SyncState
from .meta import SECTION_BYTES_MAX, PeerMeta
from .protocol import MemberChanged, MetaChanged, Output, Protocol, PushPull, Send
from .sections import FetchSection
from .settings import MembershipSettings
from .udp import UdpEndpoint, open_udp

log = logging.getLogger("disruptor.membership")

SYNC_PATH = "/membership/sync"
# ``GET SECTIONS_PATH/<section number>``: this peer's content of one metadata section.
SECTIONS_PATH = "/membership/sections"
DROP_REASONS = (
    "truncated", "oversized", "version", "auth", "malformed", "incarnation",
    "replay", "clock", "rate_limited", "self",
)  # fmt: skip


@dataclass
class MembershipStats:
    probes: int = 0
    probes_failed: int = 0
    suspicions: int = 0
    refutations: int = 0
    deaths_declared: int = 0
    absurd_incarnations: int = 0
    push_pulls: int = 0
    push_pulls_failed: int = 0
    # Periodic push-pulls settled by comparing table hashes alone.
    push_pulls_hash_only: int = 0
    fast_syncs: int = 0
    section_fetches: int = 0
    section_fetches_failed: int = 0
    datagrams_in: int = 0
    datagrams_out: int = 0
    gossip_bytes_in: int = 0
    gossip_bytes_out: int = 0
    members_alive: int = 0
    members_suspect: int = 0
    members_dead: int = 0
    members_left: int = 0
    dropped_truncated: int = 0
    dropped_oversized: int = 0
    dropped_version: int = 0
    dropped_auth: int = 0
    dropped_malformed: int = 0
    dropped_incarnation: int = 0
    dropped_replay: int = 0
    dropped_clock: int = 0
    dropped_rate_limited: int = 0
    dropped_self: int = 0

    def drop(self, reason: str) -> None:
        name = f"dropped_{reason}"
        setattr(self, name, getattr(self, name, 0) + 1)

    @property
    def dropped_total(self) -> int:
        return sum(getattr(self, f"dropped_{r}") for r in DROP_REASONS)


Subscriber = Callable[[MemberView], None]


class MembershipDriver:
    def __init__(
        self,
        address: Address,
        config: MembershipSettings,
        secret: bytes,
        cluster_name: str,
        *,
        link: PeerLink,
        seeds: Sequence[Address] = (),
        metadata_provider: Callable[[], PeerMeta] | None = None,
        secondary_secrets: Sequence[bytes] = (),
    ) -> None:
        self.address = address
        self.name = str(address)
        self.config = config.validate()
        self.secret = secret
        self.keyring = Keyring(cluster_name, secret, secondary_secrets)
        self.seeds = tuple(str(s) for s in seeds)
        self.metadata_provider = metadata_provider
        self.link = link
        self.stats = MembershipStats()
        self.protocol: Protocol | None = None
        self._admission = Admission(
            self.keyring,
            self.name,
            self.config.datagram_bytes_max,
            self.config.replay_window_s,
            self.config.sender_packets_per_s,
            self.config.sender_burst_packets,
        )
        # A fresh session per start: packets of an earlier run of this peer are not replays of
        # this one's (the clock window bounds how long those stay acceptable).
        self._session_id = random.SystemRandom().getrandbits(63)
        self._seq = 0
        self._udp: UdpEndpoint | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._subscribers: list[Subscriber] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- lifecycle ---

    async def start(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        rng = random.Random(random.SystemRandom().getrandbits(64))  # noqa: S311 - not for keys
        self.protocol = Protocol(
            self.name, self.config, rng, loop.time(), self._read_meta(), self.seeds
        )
        self._udp = await open_udp(self.address, self._on_datagram)
        self._spawn(self._refresh_meta())
        self._sync_stats(True)
        self._schedule()

    async def stop(self, leave: bool = True) -> None:
        """Leave gracefully (announce it, give it ``leave_propagate_s`` to spread), then close."""
        protocol = self.protocol
        # Alone, there is nobody to tell: do not spend ``leave_propagate_s`` waiting.
        others = [a for a in self.live_addresses() if a != self.address]
        if protocol is not None and leave and self._udp is not None and others:
            loop = asyncio.get_running_loop()
            self._run(protocol.leave(loop.time()))
            deadline = loop.time() + self.config.leave_propagate_s
            # Gossip ticks keep running; give them until the rumour is out or time is up.
            while len(protocol.broadcasts) and loop.time() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(self.config.gossip_interval_s)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._udp is not None:
            self._udp.close()
            self._udp = None

    # --- queries ---

    def members(self) -> list[MemberView]:
        if self.protocol is None:
            return []
        return [self._wall(v) for v in self.protocol.views()]

    def live_addresses(self) -> list[Address]:
        return [m.address for m in self.members() if m.state in ("alive", "suspect")]

    def meta_of(self, address: Address) -> PeerMeta | None:
        """The peer's full metadata: load and version as gossiped, bundles as last fetched from
        it (fetched again within about ``section_fetch_jitter_s`` of a change)."""
        return self.protocol.full_meta(str(address)) if self.protocol else None

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(view)`` on every member state change; returns an unsubscribe."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    # --- push-pull, served side (called by the HTTP handler) ---

    def handle_sync(self, body: bytes) -> bytes:
        protocol = self._require()
        try:
            remote = decode_sync(body, self.config.sync_bytes_max)
        except CodecError as exc:
            if exc.reason == "oversized":
                raise PayloadTooLarge(str(exc)) from None
            raise ProtocolError(f"bad push-pull body: {exc}") from None
        reply, outputs = protocol.push_pull_reply(asyncio.get_running_loop().time(), remote)
        self._run(outputs)
        return encode_sync(reply)

    def section(self, section: int) -> bytes:
        """Our content of one metadata section (served at ``SECTIONS_PATH/<section>``)."""
        content = self._require().section_content(section)
        if content is None:
            raise NotFound(f"no metadata section {section}")
        return content

    # --- internals ---

    def _require(self) -> Protocol:
        if self.protocol is None:
            raise ProtocolError("membership is not running")
        return self.protocol

    def _wall(self, view: MemberView) -> MemberView:
        # The core runs on the loop's clock; callers (and /peers) want wall-clock times. Safe to
        # call from any thread: the loop's clock is monotonic and readable from anywhere.
        loop_now = self._loop.time() if self._loop is not None else time.monotonic()
        offset = time.time() - loop_now
        last_seen = view.last_seen + offset if not view.is_self else time.time()
        return MemberView(
            view.address,
            view.state,
            view.incarnation,
            view.since + offset,
            last_seen,
            view.meta,
            view.is_self,
        )

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _schedule(self) -> None:
        if self.protocol is None or self._udp is None:
            return
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_at(self.protocol.next_deadline(), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self.protocol is not None:
            self._run(self.protocol.tick(asyncio.get_running_loop().time()))

    def _run(self, outputs: list[Output]) -> None:
        changed = False
        for output in outputs:
            if isinstance(output, Send):
                self._send(output)
            elif isinstance(output, PushPull):
                self._spawn(self._push_pull(output))
            elif isinstance(output, FetchSection):
                self._spawn(self._fetch_section(output))
            elif isinstance(output, MetaChanged):
                continue
            else:
                changed = True
                self._notify(output)
        self._sync_stats(changed)
        self._schedule()

    def _send(self, send: Send) -> None:
        if self._udp is None:
            return
        self._seq += 1
        packet = Packet(
            self.name, self._session_id, self._seq, int(time.time() * 1000), send.messages
        )
        frame = self.keyring.seal(encode_packet(packet), os.urandom(NONCE_BYTES))
        try:
            to = Address.parse(send.to)
        except DisruptorError:
            return
        self.stats.datagrams_out += 1
        self.stats.gossip_bytes_out += len(frame)
        self._udp.send(frame, to)

    def _on_datagram(self, data: bytes, addr: tuple[Any, ...]) -> None:
        protocol = self.protocol
        if protocol is None:
            return
        now = asyncio.get_running_loop().time()
        self.stats.datagrams_in += 1
        self.stats.gossip_bytes_in += len(data)
        admitted = self._admission.admit(data, now, time.time())
        if isinstance(admitted, str):
            self.stats.drop(admitted)
            return
        packet = admitted
        self._run(protocol.receive(now, packet.sender, packet.messages))

    async def _push_pull(self, request: PushPull) -> None:
        protocol = self._require()
        reply: SyncState | None = None
        try:
            reply = await self._post_sync(request)
        except (CodecError, DisruptorError) as exc:
            log.debug("push-pull with %s failed: %s", request.target, exc)
        self._run(protocol.push_pull_done(asyncio.get_running_loop().time(), request.target, reply))

    async def _post_sync(self, request: PushPull) -> SyncState:
        async with self.link.open(
            "POST",
            Address.parse(request.target),
            SYNC_PATH,
            body=encode_sync(request.state),
            headers={"Content-Type": "application/octet-stream"},
            timeout_s=self.config.push_pull_timeout_s,
        ) as reply:
            if reply.status != 200:
                raise ProtocolError(f"push-pull answered {reply.status}")
            body = await reply.body(self.config.sync_bytes_max)
        return decode_sync(body, self.config.sync_bytes_max)

    async def _fetch_section(self, fetch: FetchSection) -> None:
        protocol = self._require()
        content: bytes | None = None
        try:
            path = f"{SECTIONS_PATH}/{fetch.section}"
            async with self.link.open(
                "GET",
                Address.parse(fetch.node),
                path,
                timeout_s=self.config.push_pull_timeout_s,
            ) as reply:
                if reply.status == 200:
                    content = await reply.body(SECTION_BYTES_MAX)
        except DisruptorError as exc:
            log.debug("fetching section %s from %s failed: %s", fetch.section, fetch.node, exc)
        self._run(protocol.section_fetched(asyncio.get_running_loop().time(), fetch, content))

    def _read_meta(self) -> PeerMeta:
        if self.metadata_provider is None:
            return PeerMeta()
        try:
            return self.metadata_provider().bounded()
        except Exception:  # a provider bug must not stop gossip
            log.exception("metadata provider failed")
            return self.protocol.meta if self.protocol else PeerMeta()

    async def _refresh_meta(self) -> None:
        while True:
            await asyncio.sleep(self.config.meta_refresh_s)
            if self.protocol is not None and not self.protocol.leaving:
                loop = asyncio.get_running_loop()
                self._run(self.protocol.update_meta(loop.time(), self._read_meta()))

    def _notify(self, change: MemberChanged) -> None:
        if not self._subscribers or self.protocol is None:
            return
        view = next((v for v in self.protocol.views() if str(v.address) == change.node), None)
        if view is None:
            return
        view = self._wall(view)
        for callback in list(self._subscribers):
            try:
                callback(view)
            except Exception:  # one subscriber's bug must not stop the others or gossip
                log.exception("membership subscriber failed")

    def _sync_stats(self, members_changed: bool) -> None:
        protocol = self.protocol
        if protocol is None:
            return
        c, s = protocol.counters, self.stats
        s.probes, s.probes_failed, s.suspicions = c.probes, c.probes_failed, c.suspicions
        s.refutations, s.deaths_declared = c.refutations, c.deaths_declared
        s.absurd_incarnations = c.absurd_incarnations
        s.push_pulls, s.push_pulls_failed = c.push_pulls, c.push_pulls_failed
        s.push_pulls_hash_only, s.fast_syncs = c.push_pulls_hash_only, c.fast_syncs
        s.section_fetches = protocol.fetched.fetches
        s.section_fetches_failed = protocol.fetched.fetches_failed
        if members_changed:
            counts = protocol.table.counts_by_state()
            s.members_alive, s.members_suspect = counts["alive"], counts["suspect"]
            s.members_dead, s.members_left = counts["dead"], counts["left"]
