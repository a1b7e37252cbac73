"""One worker's protocol session as a state machine: starting, ready, busy, draining, dead.

Rule: no IO and no clock of its own. The adapter feeds it the worker's stdout bytes, the process's
exit, and the time (``now``, seconds on any monotonic clock); the session returns what happened
(``Output`` events) and what the adapter must do (``Send``, ``Kill``). It tracks every call in
flight by id, with its deadline, so that however a worker dies, each call it held ends exactly
once: completed, failed, timed out, or lost with the worker.

    starting --ready--> ready <--call/reply--> busy     (busy: no spare concurrency)
        |                 |                      |
        +-----------------+------shutdown--------+--> draining --exit--> dead
        any state --exit / violation / deadline--> dead

It also knows which protocol version it speaks. Every worker starts in version 1 (NDJSON); when
its ready line offers version 2 (and ``protocol_max`` allows it), the session answers with one
version 1 ``protocol`` line and from then on reads and writes length-prefixed MessagePack frames.
A call is a list of chunks (its parts) and a completed call gives one ``ChunkResult`` per part,
whatever the version: in version 2 the arrays pass through as bytes; in version 1 the session
transcodes them to and from JSON, item by item.
"""

from __future__ import annotations

import enum
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..chunks import Chunk, ChunkResult
from ..errors import InvalidPayload, TaskFailed
from ..outcome import ErrorInfo
from .framing import (
    FRAME_BYTES_MAX,
    LINE_BYTES_MAX,
    Event,
    Frame,
    FrameDecoder,
    FrameTooLarge,
    LineDecoder,
    Unsendable,
    Violation,
    encode_frame,
    encode_line,
)
from .messages import (
    V1,
    V2,
    BadMessage,
    CallError,
    CallId,
    PartsResult,
    Ready,
    Result,
    WorkerError,
    call_body,
    call_frame,
    parse_inbound,
    parse_inbound_v2,
    protocol_frame,
    shutdown_body,
    shutdown_frame,
)

# Bytes a version 2 call frame adds around its parts' arrays (map keys, id, array headers): a
# generous bound, so that a call is known to fit before it is encoded.
CALL_ENVELOPE_BYTES = 64


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
    """The worker answered the call: one result per part, in the parts' order."""

    id: CallId
    results: tuple[ChunkResult, ...]


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
class Send:
    """The adapter must write ``data`` to the worker now, before anything else it writes."""

    data: bytes


@dataclass(frozen=True)
class Kill:
    """The adapter must kill the worker (and everything it started) now."""

    reason: str


@dataclass(frozen=True)
class Gone:
    """The session is dead; emitted once. ``clean`` when it drained and exited with status 0."""

    death: Death
    clean: bool


Output = BecameReady | Completed | Failed | TimedOut | Lost | Send | Kill | Gone


class SessionClosed(RuntimeError):
    """A call was offered to a session that cannot take it (a bug in the caller)."""


@dataclass
class _InFlight:
    counts: tuple[int, ...]  # items in each part
    deadline: float | None
    timeout_s: float | None

    @property
    def items(self) -> int:
        return sum(self.counts)


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
    frame_bytes_max: int = FRAME_BYTES_MAX
    # The highest version this side may switch to (1 keeps every worker on NDJSON).
    protocol_max: int = V2
    state: State = State.STARTING
    version: int = V1
    pid: int | None = None
    death: Death | None = None
    calls_done: int = 0

    def __post_init__(self) -> None:
        self._decoder: LineDecoder | FrameDecoder = LineDecoder(self.line_bytes_max)
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

    def call(
        self, now: float, parts: Sequence[Chunk], timeout_s: float | None
    ) -> tuple[CallId, bytes]:
        """Start a call of ``parts``; returns its id and the bytes to write.

        Raises ``Unsendable`` (nothing started) when the call does not fit in one frame, or, in
        version 1, when an item cannot be written as JSON.
        """
        if self.spare <= 0:
            raise SessionClosed(f"worker is {self.state.value} with {self.in_flight} calls")
        call_id = self._next_id
        if self.version == V2:
            size = sum(len(p.data) for p in parts) + CALL_ENVELOPE_BYTES
            if size > self.frame_bytes_max:
                raise FrameTooLarge(f"a call of {size} bytes exceeds {self.frame_bytes_max}")
            data = encode_frame(call_body(call_id, [p.data for p in parts]), self.frame_bytes_max)
        else:
            data = self._call_line(call_id, parts)
        self._next_id += 1
        deadline = now + timeout_s if timeout_s is not None else None
        self._in_flight[call_id] = _InFlight(tuple(p.count for p in parts), deadline, timeout_s)
        self._update_busy()
        return call_id, data

    def _call_line(self, call_id: CallId, parts: Sequence[Chunk]) -> bytes:
        """Version 1: the parts' items decoded and written again as one JSON line."""
        items = [item for part in parts for item in part.items()]
        try:
            return encode_line(call_frame(call_id, items), self.line_bytes_max)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, Unsendable):
                raise
            raise Unsendable(f"an item cannot be written as JSON for this worker: {exc}") from None

    def shutdown(self, now: float) -> bytes | None:
        """Ask the worker to finish its calls and exit; returns the bytes to write, if any."""
        if self.state is State.DEAD or self.state is State.DRAINING:
            return None
        self.state = State.DRAINING
        self._ready_deadline = None
        self._drain_deadline = now + self.timeouts.drain_s
        if self.version == V2:
            return encode_frame(shutdown_body(), self.frame_bytes_max)
        return encode_line(shutdown_frame(), self.line_bytes_max)

    def kill(self, reason: str, kind: DeathKind = DeathKind.STOPPED) -> list[Output]:
        """The pool stops this worker at once (its calls are lost, with ``kind``)."""
        return self._die(Death(kind, reason), kill=True)

    # --- input from the process ---

    def receive(self, now: float, data: bytes) -> list[Output]:
        if self.state is State.DEAD:
            return []
        outputs: list[Output] = []
        events = self._decoder.feed(data)
        for index, event in enumerate(events):
            version = self.version
            outputs += self._on_event(event)
            if self.death is not None:
                break  # nothing a dead worker said afterwards counts
            if self.version != version:
                outputs += self._switched(now, events[index + 1 :])
                break
        return outputs

    def _switched(self, now: float, rest: list[Event]) -> list[Output]:
        """The framing changed after the event just read; read what followed it anew."""
        if rest:
            detail = "worker wrote after its ready line before reading the protocol switch"
            return self._die(Death(DeathKind.PROTOCOL, detail), kill=True)
        assert isinstance(self._decoder, LineDecoder)
        pending = self._decoder.take_pending()
        self._decoder = FrameDecoder(self.frame_bytes_max)
        return self.receive(now, pending) if pending else []

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

    def _on_event(self, event: Event) -> list[Output]:
        if isinstance(event, Violation):
            excerpt = event.excerpt.decode("utf-8", "replace")
            return self._broke(f"{event.reason}: {excerpt!r}")
        try:
            message = (
                parse_inbound(event.body)
                if isinstance(event, Frame)
                else parse_inbound_v2(event.data)
            )
        except BadMessage as exc:
            return self._broke(str(exc))
        if isinstance(message, Ready):
            if self.state is not State.STARTING:
                return []  # a repeated ready changes nothing
            self.pid = message.pid
            self.state = State.READY
            self._ready_deadline = None
            self._update_busy()
            outputs: list[Output] = []
            if V2 in message.protocols and self.protocol_max >= V2:
                self.version = V2
                outputs.append(Send(encode_line(protocol_frame(V2), self.line_bytes_max)))
            return [*outputs, BecameReady(message.info)]
        if self.state is State.STARTING:
            return self._broke("worker answered a call before saying ready")
        flight = self._in_flight.pop(message.id, None)
        if flight is None:
            return self._broke(f"worker answered call {message.id}, which is not in flight")
        if isinstance(message, CallError):
            self._answered()
            return [Failed(message.id, message.error)]
        try:
            results = (
                _results_v1(message, flight)
                if isinstance(message, Result)
                else _results_v2(message, flight)
            )
        except BadMessage as exc:
            # The call's items cannot be matched to replies; the worker cannot be trusted.
            self._in_flight[message.id] = flight
            return self._broke(f"worker replied to call {message.id} with {exc}")
        self._answered()
        return [Completed(message.id, results)]

    def _answered(self) -> None:
        self.calls_done += 1
        self._update_busy()

    def _broke(self, detail: str) -> list[Output]:
        death = Death(DeathKind.PROTOCOL, f"worker broke the protocol on stdout: {detail}")
        return self._die(death, kill=True)

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


def _results_v1(message: Result, flight: _InFlight) -> tuple[ChunkResult, ...]:
    """A version 1 reply cut back into its parts, each encoded as a chunk result."""
    if len(message.values) != flight.items:
        raise BadMessage(f"{len(message.values)} results for {flight.items} items")
    results: list[ChunkResult] = []
    errors = list(message.errors)
    start = 0
    for count in flight.counts:
        end = start + count
        mine = [(offset - start, _info(e)) for offset, e in errors if start <= offset < end]
        results.append(ChunkResult.of(message.values[start:end], mine))
        start = end
    return tuple(results)


def _results_v2(message: PartsResult, flight: _InFlight) -> tuple[ChunkResult, ...]:
    """A version 2 reply's parts, checked against the call's parts; values stay encoded."""
    if len(message.parts) != len(flight.counts):
        raise BadMessage(f"{len(message.parts)} parts for {len(flight.counts)}")
    results: list[ChunkResult] = []
    for index, (part, count) in enumerate(zip(message.parts, flight.counts, strict=True)):
        if part.error is not None:
            results.append(ChunkResult.failed(count, _info(part.error)))
            continue
        assert part.values is not None
        try:
            errors = [(offset, _info(e)) for offset, e in part.errors]
            results.append(ChunkResult.checked(count, part.values, errors))
        except InvalidPayload as exc:
            raise BadMessage(f"a wrong result for part {index}: {exc.detail}") from None
    return tuple(results)


def _info(error: WorkerError) -> ErrorInfo:
    return ErrorInfo(TaskFailed.slug, error.type, error.message, error.traceback)


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"worker was killed by {name}"
    return f"worker exited with status {returncode}"
