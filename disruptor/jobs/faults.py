"""How an attempt can fail, and the peers held out of placements after they could not be reached.

The coordinator turns whatever an attempt raised into an ``AttemptFailure`` with ``failure_of``
(the one place where errors become kinds); the dispatcher decides what each kind means:

- ``UNREACHABLE``: the peer could not be reached. It is held out of every job's placements for a
  while (``HoldDown``: about the time gossip takes to declare a crashed peer dead, so its tasks
  do not bounce back to it meanwhile), and the attempt is placed again elsewhere.
- ``BUSY``: the peer refused for load (``Overloaded``, ``Unavailable``). Not its fault: the task
  waits ``retry_after_s`` and is placed again without counting a loss.
- ``REFUSED``: the work itself was refused (a bad snippet...); every peer would say the same, so
  each of the task's items reports that error.
- ``LOST``: anything else; the attempt is placed again, elsewhere if possible.

Sans-IO: no clock, callers pass ``now``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..errors import (
    BadRequest,
    DisruptorError,
    Overloaded,
    PeerUnreachable,
    Unavailable,
    Unprocessable,
)
from ..outcome import ErrorInfo

# How long a peer whose connection failed stays out of placements (or until membership says it
# is gone), unless the settings say otherwise.
HOLD_DOWN_S = 10.0


class FailureKind(enum.Enum):
    UNREACHABLE = "unreachable"
    BUSY = "busy"
    REFUSED = "refused"
    LOST = "lost"


@dataclass(frozen=True)
class AttemptFailure:
    kind: FailureKind
    detail: str
    retry_after_s: float | None = None  # BUSY: when to place the task again
    error: ErrorInfo | None = None  # REFUSED: what each of the task's items reports


def failure_of(error: BaseException) -> AttemptFailure:
    """The kind of failure an exception raised by an attempt stands for."""
    if isinstance(error, PeerUnreachable):
        return AttemptFailure(FailureKind.UNREACHABLE, error.detail)
    if isinstance(error, Overloaded | Unavailable):
        return AttemptFailure(FailureKind.BUSY, error.detail, error.retry_after_s)
    if isinstance(error, BadRequest | Unprocessable):
        refused = ErrorInfo(error.slug, type(error).__name__, error.detail)
        return AttemptFailure(FailureKind.REFUSED, error.detail, error=refused)
    if isinstance(error, DisruptorError):
        return AttemptFailure(FailureKind.LOST, error.detail)
    return AttemptFailure(FailureKind.LOST, f"{type(error).__name__}: {error}")


class HoldDown:
    """Peers held out of placements until a time; one instance shared by every job of a peer."""

    def __init__(self, hold_s: float = HOLD_DOWN_S) -> None:
        self.hold_s = hold_s
        self._until: dict[str, float] = {}
        self.holds = 0  # how many holds were ever placed (readers notice a new one by it)

    def hold(self, peer: str, now: float) -> None:
        self._until[peer] = now + self.hold_s
        self.holds += 1

    def held(self, now: float) -> set[str]:
        """The peers held at ``now`` (those whose time is up are forgotten)."""
        if not self._until:
            return set()
        for peer, until in list(self._until.items()):
            if until <= now:
                del self._until[peer]
        return set(self._until)
