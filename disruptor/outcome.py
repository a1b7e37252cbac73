"""What running one item gives: a value or an error, and the contract a local executor keeps.

Both local executors (the worker pool for bundles, the snippet runner for snippets) return one
``ItemOutcome`` per item, in the items' order, and never raise for one item's failure: an item's
error is data, so the other items' results survive it. The JSON form is
``{"value": V}`` or ``{"error": {"kind", "type", "message", "traceback"}}``, plus ``"peer"`` once
the dispatcher knows where the item ran.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from .errors import DisruptorError, TaskFailed, error_from_problem

if TYPE_CHECKING:
    from .chunks import Chunk, ChunkResult


@dataclass(frozen=True)
class ErrorInfo:
    # The error's class in disruptor's tree (slug): task-failed, worker-crashed, task-timeout,
    # snippet-budget... The client raises the matching class.
    kind: str
    # The remote exception's own type name and message (e.g. ZeroDivisionError, "division by zero").
    type: str
    message: str
    traceback: str | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": self.kind, "type": self.type, "message": self.message}
        if self.traceback:
            body["traceback"] = self.traceback
        return body

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> ErrorInfo:
        return cls(
            kind=str(body.get("kind", TaskFailed.slug)),
            type=str(body.get("type", "Error")),
            message=str(body.get("message", "")),
            traceback=body.get("traceback"),
        )

    def to_exception(self) -> DisruptorError:
        """The exception a client raises for this item (``TaskFailed`` or a subclass)."""
        error = error_from_problem(
            {
                "type": f"urn:disruptor:problem:{self.kind}",
                "detail": f"{self.type}: {self.message}",
                "error_type": self.type,
                "message": self.message,
                "traceback": self.traceback,
            }
        )
        return error if isinstance(error, TaskFailed) else TaskFailed(error.detail)


@dataclass(frozen=True)
class ItemOutcome:
    value: Any = None
    error: ErrorInfo | None = None
    peer: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = (
            {"value": self.value} if self.error is None else {"error": self.error.to_json()}
        )
        if self.peer is not None:
            body["peer"] = self.peer
        return body

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> ItemOutcome:
        if "error" in body and body["error"] is not None:
            return cls(error=ErrorInfo.from_json(body["error"]), peer=body.get("peer"))
        return cls(value=body.get("value"), peer=body.get("peer"))

    @classmethod
    def failure(
        cls, kind: str, type_: str, message: str, traceback: str | None = None
    ) -> ItemOutcome:
        return cls(error=ErrorInfo(kind, type_, message, traceback))


class BundleExecutor(Protocol):
    """The worker pool, as the job layer sees it."""

    async def run_batch(
        self, bundle: str, items: Sequence[Any], *, timeout_s: float | None = None
    ) -> list[ItemOutcome]: ...


class SnippetExecutor(Protocol):
    """The snippet runner, as the job layer sees it: by source, or by the SHA-1 of a stored one.

    ``run_chunk`` is the contract: one value slot per item of the chunk, in order, failures as
    sparse errors. ``run_batch`` is its wrapper for lists of items (``Chunk.of`` in,
    ``ChunkResult.outcomes()`` out) until every caller carries chunks.
    """

    async def run_chunk(
        self,
        chunk: Chunk,
        *,
        source: str | None = None,
        sha1: str | None = None,
        timeout_s: float | None = None,
    ) -> ChunkResult: ...

    async def run_batch(
        self,
        items: Sequence[Any],
        *,
        source: str | None = None,
        sha1: str | None = None,
        timeout_s: float | None = None,
    ) -> list[ItemOutcome]: ...
