"""When a peer exchanges its whole table with another (push-pull): its join, the periodic
anti-entropy round, and fast syncs while membership changes fast.

- **Join**: one push-pull to each seed, retried with exponential backoff until one answers.
- **Periodic**: every ``push_pull_interval_s`` (stretched by log2 above 32 peers), a *summary*
  (the table's hash only) to one random live member, and, in proportion to how many members we
  believe dead, a whole table to one of them (two sides of a healed partition find each other).
- **Fast syncs**: after our join, at least ``join_syncs_min`` whole-table exchanges with random
  members every ``fast_sync_interval_s``; and whenever we learned ``fast_sync_members_min`` new
  members since the last one, more, for as long as each still teaches us something.

Rule: this module only decides when and with whom; the protocol builds the bodies and merges the
answers. Time and randomness are passed in.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from .members import MemberTable
from .messages import SyncState
from .outputs import ProtocolCounters, PushPull, push_pull_scale
from .settings import MembershipSettings

_NEVER = float("inf")
# Builds our push-pull body: ``state(join, summary)``.
StateOf = Callable[[bool, bool], SyncState]


class Exchanges:
    def __init__(
        self,
        config: MembershipSettings,
        rng: random.Random,
        now: float,
        seeds: tuple[str, ...],
        counters: ProtocolCounters,
    ) -> None:
        self.config = config
        self.rng = rng
        self.counters = counters
        self.seeds = seeds
        self.joined = not seeds
        self.join_backoff_s = config.join_retry_initial_s
        self.next_join_at = now
        self.joins_in_flight = 0
        self.next_push_pull_at = now + config.push_pull_interval_s * rng.uniform(0.5, 1.0)
        # Fast syncs: members learned since the last exchange, exchanges still owed after our
        # join, when the next is due (never, while membership is quiet).
        self.learned = 0
        self.join_syncs_left = 0
        self.next_fast_sync_at = _NEVER
        # Peers we sent a summary (hash only) to, awaiting their answer.
        self.summaries: set[str] = set()

    def next_deadline(self) -> float:
        deadline = min(self.next_push_pull_at, self.next_fast_sync_at)
        if not self.joined and not self.joins_in_flight:
            deadline = min(deadline, self.next_join_at)
        return deadline

    def due(self, now: float, table: MemberTable, state_of: StateOf) -> list[PushPull]:
        out: list[PushPull] = []
        if not self.joined and not self.joins_in_flight and now >= self.next_join_at:
            self.joins_in_flight = len(self.seeds)
            out += [PushPull(seed, state_of(True, False)) for seed in self.seeds]
        if now >= self.next_push_pull_at:
            interval = push_pull_scale(self.config.push_pull_interval_s, table.live_count())
            self.next_push_pull_at = now + interval
            out += self._periodic(table, state_of)
        if now >= self.next_fast_sync_at:
            out += self._fast(now, table, state_of)
        return out

    def learned_member(self, now: float) -> None:
        """A member new to us (or back from the dead)."""
        self.learned += 1
        if self.learned == self.config.fast_sync_members_min:
            self._want_fast_sync(now)

    def answered(self, now: float, target: str, ok: bool) -> bool:
        """The exchange with ``target`` ended (``ok``: it answered). True if it was a summary."""
        summary = target in self.summaries
        self.summaries.discard(target)
        if target not in self.seeds or self.joined:
            return summary
        self.joins_in_flight = max(0, self.joins_in_flight - 1)
        if ok:
            self.joined = True
            # Exchange tables with others soon: our seed may have missed someone, and whoever it
            # missed has stopped gossiping about itself by now.
            self.join_syncs_left = self.config.join_syncs_min
            self._want_fast_sync(now)
        elif not self.joins_in_flight:
            self.next_join_at = now + self.join_backoff_s
            self.join_backoff_s = min(self.config.join_retry_max_s, 2 * self.join_backoff_s)
        return summary

    def _periodic(self, table: MemberTable, state_of: StateOf) -> list[PushPull]:
        out: list[PushPull] = []
        live = table.random_members(self.rng, 1, 0.0, 0.0)
        if live:
            # A summary first: a settled cluster's tables agree, and then nothing more is sent.
            self.summaries.add(live[0].node)
            out.append(PushPull(live[0].node, state_of(False, True)))
        dead = table.dead()
        if dead and self.rng.random() < min(1.0, len(dead) / max(1, table.live_count())):
            out.append(PushPull(self.rng.choice(dead).node, state_of(False, False)))
        return out

    def _want_fast_sync(self, now: float) -> None:
        if self.next_fast_sync_at == _NEVER and self.joined:
            interval = self.config.fast_sync_interval_s
            self.next_fast_sync_at = now + interval * self.rng.uniform(0.5, 1.0)

    def _fast(self, now: float, table: MemberTable, state_of: StateOf) -> list[PushPull]:
        # Started by a burst of news (fast_sync_members_min new members), kept up while each
        # exchange still brings something: the last members of a storm are the ones few know.
        if self.learned < 1 and self.join_syncs_left <= 0:
            self.next_fast_sync_at = _NEVER
            return []
        self.join_syncs_left -= 1
        self.learned = 0
        self.next_fast_sync_at = now + self.config.fast_sync_interval_s
        live = table.random_members(self.rng, 1, now, 0.0)
        if not live:
            return []
        self.counters.fast_syncs += 1
        return [PushPull(live[0].node, state_of(False, False))]
