"""What running one item gives: a value or an error, and the contract a local executor keeps.

Both local executors (the worker pool for bundles, the snippet engine for snippets) return one
``ItemOutcome`` per item, in the items' order, and never raise for one item's failure: an item's
error is data, so the other items' results survive it. The worker pool also keeps that contract
for a ``Chunk`` (``run_chunk``): one ``ChunkResult`` with one value slot per item, in order, its
failures as per-item errors, without an object per item. The JSON form is
``{"value": V}`` or ``{"error": {"kind", "type", "message", "traceback"}}``, plus ``"peer"`` once
the dispatcher knows where the item ran.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Any

from .errors import DisruptorError, TaskFailed, error_from_problem


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
        """The exception a client raises for this item: ``TaskFailed`` (or the subclass of its
        kind) that is also an instance of the remote built-in exception class when there is one,
        so ``except ValueError`` catches a remote ``ValueError`` as it would a local one."""
        problem = {
            "type": f"urn:disruptor:problem:{self.kind}",
            "detail": f"{self.type}: {self.message}",
            "error_type": self.type,
            "message": self.message,
            "traceback": self.traceback,
        }
        error = error_from_problem(problem)
        if not isinstance(error, TaskFailed):
            error = TaskFailed(error.detail, **error.extra)
        hybrid = _hybrid(type(error), self.type)
        if hybrid is None:
            return error
        try:
            return hybrid(error.detail, **error.extra)
        except TypeError:  # a built-in whose constructor wants more (UnicodeDecodeError...)
            _HYBRIDS[(type(error), self.type)] = None
            return error


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


# Hybrids made so far: (kind's class, built-in name) -> class, or None where none can exist.
_HYBRIDS: dict[tuple[type[TaskFailed], str], type[TaskFailed] | None] = {}


def _hybrid(kind: type[TaskFailed], remote_type: str) -> type[TaskFailed] | None:
    """A class that is both ``kind`` and the built-in exception named ``remote_type``.

    None when the name is not a built-in ``Exception`` subclass, or when the two cannot share an
    instance layout (``OSError`` and a few others keep C fields of their own).
    """
    key = (kind, remote_type)
    if key not in _HYBRIDS:
        builtin = getattr(builtins, remote_type, None)
        made: type[TaskFailed] | None = None
        if (
            isinstance(builtin, type)
            and issubclass(builtin, Exception)
            and not issubclass(builtin, DisruptorError)
        ):
            try:
                made = type(f"{kind.__name__}[{remote_type}]", (kind, builtin), {})
            except TypeError:  # instance lay-out conflict
                made = None
        _HYBRIDS[key] = made
    return _HYBRIDS[key]
