"""When to restart a crashed worker, and when to stop trying: backoff and crash-loop detection.

Rule: sans-IO; time and the random generator come from the caller. A bundle whose workers crash
``crashes_max`` times within ``window_s`` is crash-looping: the pool marks it failed with the
reason, rather than spinning. Otherwise the delay before a restart doubles with each crash in a
row (jittered, so workers of many bundles do not restart in lock step) and resets once a worker
has answered a call.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field


@dataclass
class CrashHistory:
    crashes_max: int = 5
    window_s: float = 60.0
    backoff_initial_s: float = 0.1
    backoff_max_s: float = 10.0
    rng: random.Random = field(default_factory=lambda: random.Random(0))  # noqa: S311

    def __post_init__(self) -> None:
        self._crashes: deque[float] = deque()
        self._streak = 0

    @property
    def streak(self) -> int:
        return self._streak

    def record(self, now: float) -> float | None:
        """A worker crashed at ``now``: the delay before restarting it, or None to give up."""
        self._crashes.append(now)
        while self._crashes and self._crashes[0] <= now - self.window_s:
            self._crashes.popleft()
        if len(self._crashes) >= self.crashes_max:
            return None
        self._streak += 1
        base = min(self.backoff_max_s, self.backoff_initial_s * 2 ** (self._streak - 1))
        # Up to a quarter less, never more: the cap stays a cap.
        return float(base * (1.0 - 0.25 * self.rng.random()))

    def recovered(self) -> None:
        """A worker did useful work: the next crash starts the backoff from the beginning."""
        self._streak = 0

    def reset(self) -> None:
        """Forget everything (the operator started the bundle's workers again)."""
        self._crashes.clear()
        self._streak = 0
