"""The one exception tree of disruptor, and its problem+json (RFC 9457) form.

Every error a peer can report is a class here. Each class carries the HTTP status it maps to and
a short slug; the slug forms the problem ``type`` URI (``urn:disruptor:problem:<slug>``), and the
client turns that URI back into the same class, so code on either side catches the same names.

    DisruptorError                       500 internal
    ├── BadRequest                       400 bad-request
    │   ├── InvalidName                  400 invalid-name
    │   └── InvalidPayload               400 invalid-payload
    ├── Unauthorized                     401 unauthorized
    ├── Forbidden                        403 forbidden
    │   └── UntrustedSigner              403 untrusted-signer
    ├── NotFound                         404 not-found
    ├── MethodNotAllowed                 405 method-not-allowed
    ├── RequestTimeout                   408 request-timeout
    ├── Conflict                         409 conflict
    │   └── JobCancelled                 409 job-cancelled
    ├── PayloadTooLarge                  413 payload-too-large
    ├── UnsupportedMediaType             415 unsupported-media-type
    ├── RangeNotSatisfiable              416 range-not-satisfiable
    ├── Unprocessable                    422 unprocessable
    │   ├── BundleRejected               422 bundle-rejected
    │   │   ├── ManifestInvalid          422 manifest-invalid
    │   │   ├── DigestMismatch           422 digest-mismatch
    │   │   ├── SignatureInvalid         422 signature-invalid
    │   │   └── ArchiveUnsafe            422 archive-unsafe
    │   └── SnippetRejected              422 snippet-rejected
    ├── Overloaded                       429 overloaded          (carries retry_after_s)
    ├── InsufficientStorage              507 insufficient-storage (the peer's disk is full)
    ├── Unavailable                      503 unavailable         (carries retry_after_s)
    │   └── PeerUnreachable              503 peer-unreachable
    ├── TaskFailed                       500 task-failed         (one item's failure, remote)
    │   ├── WorkerCrashed                500 worker-crashed
    │   ├── TaskTimeout                  504 task-timeout
    │   ├── ScratchFull                  507 scratch-full
    │   └── SnippetBudgetExceeded        500 snippet-budget
    └── ProtocolError                    400 protocol-error      (a peer or worker broke the wire)

Rule: code raises these, never aiohttp's HTTP exceptions; one middleware renders them, and foreign
exceptions are translated into them at the boundary where they arise.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

PROBLEM_TYPE_PREFIX = "urn:disruptor:problem:"
PROBLEM_CONTENT_TYPE = "application/problem+json"


class DisruptorError(Exception):
    """Base of every error disruptor raises on purpose."""

    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal"
    title: ClassVar[str] = "Internal error"
    registry: ClassVar[dict[str, type[DisruptorError]]] = {}

    def __init__(self, detail: str = "", **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra: dict[str, Any] = extra

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "slug" in cls.__dict__:
            DisruptorError.registry[cls.slug] = cls

    @property
    def type_uri(self) -> str:
        return PROBLEM_TYPE_PREFIX + self.slug

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        """The RFC 9457 body for this error; extension members come from ``extra``."""
        body: dict[str, Any] = {
            "type": self.type_uri,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance is not None:
            body["instance"] = instance
        for key, value in self.extra.items():
            body.setdefault(key, value)
        return body


DisruptorError.registry[DisruptorError.slug] = DisruptorError


def error_from_problem(body: dict[str, Any], status: int | None = None) -> DisruptorError:
    """Rebuild the exception a peer raised from its problem+json body (used by the client)."""
    type_uri = str(body.get("type", ""))
    slug = type_uri.removeprefix(PROBLEM_TYPE_PREFIX) if type_uri else ""
    cls = DisruptorError.registry.get(slug) or _class_for_status(status or body.get("status"))
    extra = {
        k: v for k, v in body.items() if k not in {"type", "title", "status", "detail", "instance"}
    }
    return cls(str(body.get("detail", "")), **extra)


def error_from_reply(
    status: int, content_type: str, raw: bytes, reason: str = ""
) -> DisruptorError:
    """The exception a failed HTTP reply stands for: its problem+json, else its text."""
    if content_type.startswith((PROBLEM_CONTENT_TYPE, "application/json")):
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if isinstance(body, dict):
            return error_from_problem(body, status)
    return error_from_problem({"detail": raw.decode(errors="replace")[:500] or reason}, status)


def _class_for_status(status: object) -> type[DisruptorError]:
    for cls in DisruptorError.registry.values():
        if cls.status == status and cls.__bases__ == (DisruptorError,):
            return cls
    return DisruptorError


class BadRequest(DisruptorError):
    status, slug, title = 400, "bad-request", "Bad request"


class InvalidName(BadRequest):
    status, slug, title = 400, "invalid-name", "Invalid name"


class InvalidPayload(BadRequest):
    status, slug, title = 400, "invalid-payload", "Invalid payload"


class Unauthorized(DisruptorError):
    status, slug, title = 401, "unauthorized", "Unauthorized"


class Forbidden(DisruptorError):
    status, slug, title = 403, "forbidden", "Forbidden"


class UntrustedSigner(Forbidden):
    status, slug, title = 403, "untrusted-signer", "Signer is not trusted"


class NotFound(DisruptorError):
    status, slug, title = 404, "not-found", "Not found"


class MethodNotAllowed(DisruptorError):
    status, slug, title = 405, "method-not-allowed", "Method not allowed"


class RequestTimeout(DisruptorError):
    status, slug, title = 408, "request-timeout", "Request timed out"


class Conflict(DisruptorError):
    status, slug, title = 409, "conflict", "Conflict"


class JobCancelled(Conflict):
    status, slug, title = 409, "job-cancelled", "Job cancelled"


class PayloadTooLarge(DisruptorError):
    status, slug, title = 413, "payload-too-large", "Payload too large"


class UnsupportedMediaType(DisruptorError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class RangeNotSatisfiable(DisruptorError):
    status, slug, title = 416, "range-not-satisfiable", "Range not satisfiable"


class Unprocessable(DisruptorError):
    status, slug, title = 422, "unprocessable", "Unprocessable content"


class BundleRejected(Unprocessable):
    status, slug, title = 422, "bundle-rejected", "Bundle rejected"


class ManifestInvalid(BundleRejected):
    status, slug, title = 422, "manifest-invalid", "Manifest invalid"


class DigestMismatch(BundleRejected):
    status, slug, title = 422, "digest-mismatch", "Digest mismatch"


class SignatureInvalid(BundleRejected):
    status, slug, title = 422, "signature-invalid", "Signature invalid"


class ArchiveUnsafe(BundleRejected):
    status, slug, title = 422, "archive-unsafe", "Archive unsafe"


class SnippetRejected(Unprocessable):
    status, slug, title = 422, "snippet-rejected", "Snippet rejected"


class Overloaded(DisruptorError):
    """The peer is saturated; ``retry_after_s`` says when to try again."""

    status, slug, title = 429, "overloaded", "Too many requests"

    def __init__(self, detail: str = "", retry_after_s: float = 1.0, **extra: Any) -> None:
        super().__init__(detail, retry_after_s=retry_after_s, **extra)
        self.retry_after_s = float(retry_after_s)


class InsufficientStorage(DisruptorError):
    """The peer's disk filled while writing (RFC 4918's 507); what was half-written is gone."""

    status, slug, title = 507, "insufficient-storage", "Insufficient storage"


class Unavailable(DisruptorError):
    status, slug, title = 503, "unavailable", "Service unavailable"

    def __init__(self, detail: str = "", retry_after_s: float = 1.0, **extra: Any) -> None:
        super().__init__(detail, retry_after_s=retry_after_s, **extra)
        self.retry_after_s = float(retry_after_s)


class PeerUnreachable(Unavailable):
    status, slug, title = 503, "peer-unreachable", "Peer unreachable"


class TaskFailed(DisruptorError):
    """One item failed remotely: ``error_type``, ``message`` and ``traceback`` say how.

    Printed, it shows the remote traceback after its message, as a local failure would.
    """

    status, slug, title = 500, "task-failed", "Task failed"

    def __str__(self) -> str:
        traceback = self.extra.get("traceback")
        if not traceback:
            return self.detail
        return f"{self.detail}\n\nRemote traceback (the item's own code):\n{traceback.rstrip()}"


class WorkerCrashed(TaskFailed):
    status, slug, title = 500, "worker-crashed", "Worker crashed"


class TaskTimeout(TaskFailed):
    status, slug, title = 504, "task-timeout", "Task timed out"


class ScratchFull(TaskFailed):
    """The worker filled its scratch directory's quota and was stopped."""

    status, slug, title = 507, "scratch-full", "Worker scratch full"


class SnippetBudgetExceeded(TaskFailed):
    status, slug, title = 500, "snippet-budget", "Snippet budget exceeded"


class ProtocolError(DisruptorError):
    """A peer or a worker broke a wire rule (bad frame, bad datagram, bad line)."""

    status, slug, title = 400, "protocol-error", "Protocol error"


__all__ = [
    "PROBLEM_CONTENT_TYPE",
    "PROBLEM_TYPE_PREFIX",
    "ArchiveUnsafe",
    "BadRequest",
    "BundleRejected",
    "Conflict",
    "DigestMismatch",
    "DisruptorError",
    "Forbidden",
    "InsufficientStorage",
    "InvalidName",
    "InvalidPayload",
    "JobCancelled",
    "ManifestInvalid",
    "MethodNotAllowed",
    "NotFound",
    "Overloaded",
    "PayloadTooLarge",
    "PeerUnreachable",
    "ProtocolError",
    "RangeNotSatisfiable",
    "RequestTimeout",
    "ScratchFull",
    "SignatureInvalid",
    "SnippetBudgetExceeded",
    "SnippetRejected",
    "TaskFailed",
    "TaskTimeout",
    "Unauthorized",
    "Unavailable",
    "Unprocessable",
    "UnsupportedMediaType",
    "UntrustedSigner",
    "WorkerCrashed",
    "error_from_problem",
]
