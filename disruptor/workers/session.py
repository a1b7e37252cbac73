"""One worker's protocol session as a state machine: starting, ready, busy, draining, dead.

Rule: no IO and no clock of its own. The adapter feeds it the worker's stdout bytes, the process's
exit, and the time (``now``, seconds on any monotonic clock); the session returns what happened
(``Output`` events) and what the adapter must do (``Kill``). It tracks every call in flight by id,
with its deadline, so that however a worker dies, each call it held ends exactly once: completed,
failed, timed out, or lost with the worker.

    starting --ready--> ready <--call/reply--> busy     (busy: no spare concurrency)
        |                 |                      |
        +-----------------+------shutdown--------+--> draining --exit--> dead
        any state --exit / violation / deadline--> dead
"""

from __future__ import annotations

import enum
import signal
from dataclasses import dataclass, field
from typing import Any

from .framing import LINE_BYTES_MAX, Frame, LineDecoder, encode_line
from .messages import (
    BadMessage,
    CallError,
    CallId,
    ItemResult,
    Ready,
    Result,
    WorkerError,
    call_frame,
    parse_inbound,
    shutdown_frame,
)


class State(enum.Enum):
    STARTING = "starting"
    READY = "ready"
    BUSY = "busy"
    DRAINING = "draining"
    DEAD = "dead"


class DeathKind(enum.Enum):
    # Values are the slugs of disruptor.errors, so an item lost this way reports that kind.
    CRASHED = "worker-crashed"
    PROTOCOL = "protocol-error"
    TIMEOUT = "task-timeout"
    STOPPED = "unavailable"  # stopped by the pool (shutdown, drain overrun)
    SCRATCH_FULL = "scratch-full"  # stopped for filling its scratch quota


@dataclass(frozen=True)
class Death:
    kind: DeathKind
    detail: str


@dataclass(frozen=True)
class BecameReady:
    info: dict[str, Any]


@dataclass(frozen=True)
class Completed:
    id: CallId
    results: tuple[ItemResult, ...]


@dataclass(frozen=True)
class Failed:
    """The worker answered the call with a call-level error."""

    id: CallId
    error: WorkerError


@dataclass(frozen=True)
class TimedOut:
    id: CallId
    timeout_s: float


@dataclass(frozen=True)
class Lost:
    """The call was in flight when the worker died for another reason; it may be retried."""

    id: CallId
    death: Death


@dataclass(frozen=True)
class Kill:
    """The adapter must kill the worker (and everything it started) now."""

    reason: str


@dataclass(frozen=True)
class Gone:
    """The session is dead; emitted once. ``clean`` when it drained and exited with status 0."""

    death: Death
    clean: bool


Output = BecameReady | Completed | Failed | TimedOut | Lost | Kill | Gone


class SessionClosed(RuntimeError):
    """A call was offered to a session that cannot take it (a bug in the caller)."""


@dataclass
class _InFlight:
    items: int
    deadline: float | None
    timeout_s: float | None


@dataclass
class SessionTimeouts:
    ready_s: float = 30.0  # from spawn to the ready line
    drain_s: float = 10.0  # from shutdown to exit


@dataclass
class Session:
    concurrency: int
    started_at: float
    timeouts: SessionTimeouts = field(default_factory=SessionTimeouts)
    line_bytes_max: int = LINE_BYTES_MAX
    state: State = State.STARTING
    pid: int | None = None
    death: Death | None = None
    calls_done: int = 0

    def __post_init__(self) -> None:
        self._decoder = LineDecoder(self.line_bytes_max)
        self._in_flight: dict[CallId, _InFlight] = {}
        self._next_id: CallId = 1
        self._ready_deadline: float | None = self.started_at + self.timeouts.ready_s
        self._drain_deadline: float | None = None

    # --- questions ---

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def spare(self) -> int:
        """Calls this worker can take now."""
        if self.state not in (State.READY, State.BUSY):
            return 0
        return max(0, self.concurrency - len(self._in_flight))

    def call_ids(self) -> list[CallId]:
        return list(self._in_flight)

    def next_deadline(self) -> float | None:
        deadlines = [f.deadline for f in self._in_flight.values() if f.deadline is not None]
        for d in (self._ready_deadline, self._drain_deadline):
            if d is not None:
                deadlines.append(d)
        return min(deadlines) if deadlines and self.state is not State.DEAD else None

    # --- commands from the pool ---

    def call(self, now: float, items: list[Any], timeout_s: float | None) -> tuple[CallId, bytes]:
        """Start a call; returns its id and the line to write. Raises ``LineTooLong``."""
        if self.spare <= 0:
            raise SessionClosed(f"worker is {self.state.value} with {self.in_flight} calls")
        call_id = self._next_id
        line = encode_line(call_frame(call_id, items), self.line_bytes_max)
        self._next_id += 1
        deadline = now + timeout_s if timeout_s is not None else None
        self._in_flight[call_id] = _InFlight(len(items), deadline, timeout_s)
        self._update_busy()
        return call_id, line

    def shutdown(self, now: float) -> bytes | None:
        """Ask the worker to finish its calls and exit; returns the line to write, if any."""
        if self.state is State.DEAD or self.state is State.DRAINING:
            return None
        self.state = State.DRAINING
        self._ready_deadline = None
        self._drain_deadline = now + self.timeouts.drain_s
        return encode_line(shutdown_frame(), self.line_bytes_max)

    def kill(self, reason: str, kind: DeathKind = DeathKind.STOPPED) -> list[Output]:
        """The pool stops this worker at once (its calls are lost, with ``kind``)."""
        return self._die(Death(kind, reason), kill=True)

    # --- input from the process ---

    def receive(self, now: float, data: bytes) -> list[Output]:
        if self.state is State.DEAD:
            return []
        outputs: list[Output] = []
        for event in self._decoder.feed(data):
            outputs += self._on_event(event)
            if self.death is not None:
                break  # nothing a dead worker said afterwards counts
        return outputs

    def eof(self, now: float, *, exited: bool = False) -> list[Output]:
        """The worker's stdout closed (``exited``: because the process ended, reported next)."""
        if self.state is State.DEAD:
            return []
        for event in self._decoder.end():
            return self._on_event(event)
        if exited or (self.state is State.DRAINING and not self._in_flight):
            return []  # an orderly close; the exit follows
        return self._die(Death(DeathKind.CRASHED, "worker closed its stdout"), kill=True)

    def exited(self, now: float, returncode: int) -> list[Output]:
        if self.state is State.DEAD:
            return []
        clean = self.state is State.DRAINING and not self._in_flight and returncode == 0
        return self._die(Death(DeathKind.CRASHED, describe_exit(returncode)), clean=clean)

    def tick(self, now: float) -> list[Output]:
        """Fire every deadline that has passed."""
        if self.state is State.DEAD:
            return []
        if self._ready_deadline is not None and now >= self._ready_deadline:
            detail = f"worker did not say ready within {self.timeouts.ready_s:g}s"
            return self._die(Death(DeathKind.CRASHED, detail), kill=True)
        if self._drain_deadline is not None and now >= self._drain_deadline:
            detail = f"worker did not exit within {self.timeouts.drain_s:g}s of shutdown"
            return self._die(Death(DeathKind.STOPPED, detail), kill=True)
        expired = [
            cid
            for cid, flight in self._in_flight.items()
            if flight.deadline is not None and now >= flight.deadline
        ]
        if not expired:
            return []
        outputs: list[Output] = []
        for cid in expired:
            flight = self._in_flight.pop(cid)
            outputs.append(TimedOut(cid, flight.timeout_s or 0.0))
        seconds = ", ".join(f"{o.timeout_s:g}s" for o in outputs if isinstance(o, TimedOut))
        death = Death(DeathKind.TIMEOUT, f"a call ran past its timeout ({seconds})")
        return outputs + self._die(death, kill=True)

    # --- internals ---

    def _on_event(self, event: Any) -> list[Output]:
        if not isinstance(event, Frame):
            excerpt = event.excerpt.decode("utf-8", "replace")
            detail = f"worker broke the protocol on stdout: {event.reason}: {excerpt!r}"
            return self._die(Death(DeathKind.PROTOCOL, detail), kill=True)
        try:
            message = parse_inbound(event.body)
        except BadMessage as exc:
            detail = f"worker broke the protocol on stdout: {exc}"
            return self._die(Death(DeathKind.PROTOCOL, detail), kill=True)
        if isinstance(message, Ready):
            if self.state is not State.STARTING:
                return []  # a repeated ready changes nothing
            self.pid = message.pid
            self.state = State.READY
            self._ready_deadline = None
            self._update_busy()
            return [BecameReady(message.info)]
        if self.state is State.STARTING:
            detail = "worker answered a call before saying ready"
            return self._die(Death(DeathKind.PROTOCOL, detail), kill=True)
        flight = self._in_flight.pop(message.id, None)
        if flight is None:
            detail = f"worker answered call {message.id}, which is not in flight"
            return self._die(Death(DeathKind.PROTOCOL, detail), kill=True)
        self.calls_done += 1
        self._update_busy()
        if isinstance(message, CallError):
            return [Failed(message.id, message.error)]
        assert isinstance(message, Result)
        if len(message.results) != flight.items:
            # The call's items cannot be matched to replies; the worker cannot be trusted.
            self._in_flight[message.id] = flight
            detail = (
                f"worker replied to call {message.id} with {len(message.results)} results "
                f"for {flight.items} items"
            )
            return self._die(Death(DeathKind.PROTOCOL, detail), kill=True)
        return [Completed(message.id, message.results)]

    def _update_busy(self) -> None:
        if self.state in (State.READY, State.BUSY):
            full = len(self._in_flight) >= self.concurrency
            self.state = State.BUSY if full else State.READY

    def _die(self, death: Death, *, kill: bool = False, clean: bool = False) -> list[Output]:
        outputs: list[Output] = [Lost(cid, death) for cid in self._in_flight]
        self._in_flight.clear()
        self.state = State.DEAD
        self.death = death
        self._ready_deadline = self._drain_deadline = None
        if kill:
            outputs.append(Kill(death.detail))
        outputs.append(Gone(death, clean))
        return outputs


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"worker was killed by {name}"
    return f"worker exited with status {returncode}"
