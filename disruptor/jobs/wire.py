"""The job layer's messages as typed data: a job as submitted, a task between peers, its reply.

One schema serves every encoding: JSON (the public HTTP format) and MessagePack (negotiated by
the Python client and used between peers), decoded by msgspec straight into these structs, so a
wrong type, an unknown field, a number out of its range or a nesting too deep is refused with a
message naming the field, before any work starts. Items travel as chunks (``msgspec.Raw``: the
bytes of one MessagePack array each) wherever both ends speak MessagePack; a JSON job carries
``items`` and the receiving peer cuts them into chunks once.

Rule: every number has a finite range and every list a bound, stated here beside the field.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, TypeVar

import msgspec

from ..address import Address as PeerAddress
from ..chunks import CHUNK_BYTES_MAX, Chunk
from ..errors import InvalidPayload
from ..outcome import ErrorInfo
from .model import JobOptions, Kind, Work
from .policies import POLICY_NAMES

# A job's items in all (JSON or chunks), and its chunks.
ITEMS_MAX = 1_000_000
CHUNKS_MAX = 100_000
# A request body: JSON items, or every chunk plus the fields around them.
JOB_BYTES_MAX = 256 * 1024 * 1024
# Longest per-item timeout, a day: longer is a mistake, not a plan.
TIMEOUT_S_MAX = 86_400.0
RETRIES_MAX = 10
CHUNK_SIZE_MAX = 100_000
PEER_COUNT_MAX = 100_000
SNIPPET_CHARS_MAX = 1_000_000
IDEMPOTENCY_KEY_CHARS_MAX = 128
POLICY_NAME_CHARS_MAX = 64

SHA1_PATTERN = re.compile("[0-9a-f]{40}")
Sha1 = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{40}$")]
Source = Annotated[str, msgspec.Meta(min_length=1, max_length=SNIPPET_CHARS_MAX)]
Address = Annotated[str, msgspec.Meta(min_length=3, max_length=300)]
Timeout = Annotated[float, msgspec.Meta(gt=0, le=TIMEOUT_S_MAX)]

# What each bounded field accepts, said in full when a value is refused.
RANGES = {
    "timeout_s": f"a number above 0 and at most {TIMEOUT_S_MAX:g} (seconds per item)",
    "retries": f"an integer from 0 to {RETRIES_MAX}",
    "chunk_size": f"an integer from 1 to {CHUNK_SIZE_MAX}",
    "peers": f"'all', a count from 1 to {PEER_COUNT_MAX}, or a list of HOST:PORT",
    "items": f"an array of at most {ITEMS_MAX} items",
    "chunks": f"an array of at most {CHUNKS_MAX} MessagePack arrays",
    "bundle": "40 lowercase hex digits (a SHA-1)",
    "snippet_sha1": "40 lowercase hex digits (a SHA-1)",
    "snippet": f"snippet source of 1 to {SNIPPET_CHARS_MAX} characters",
    "reduce": f"snippet source of 1 to {SNIPPET_CHARS_MAX} characters",
    "fail_fast": "true or false",
    "wait": "true or false",
    "stream": "true or false",
    "policy": f"a policy name of at most {POLICY_NAME_CHARS_MAX} characters",
}


class JobSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """A job as ``POST /jobs`` (or the job stream) receives it."""

    bundle: Sha1 | None = None
    snippet: Source | None = None
    snippet_sha1: Sha1 | None = None
    items: Annotated[list[Any], msgspec.Meta(max_length=ITEMS_MAX)] | None = None
    chunks: Annotated[list[msgspec.Raw], msgspec.Meta(max_length=CHUNKS_MAX)] | None = None
    policy: Annotated[str, msgspec.Meta(max_length=POLICY_NAME_CHARS_MAX)] = "least-loaded"
    peers: (
        Annotated[int, msgspec.Meta(ge=1, le=PEER_COUNT_MAX)]
        | Annotated[list[Address], msgspec.Meta(min_length=1, max_length=PEER_COUNT_MAX)]
        | str
        | None
    ) = None
    chunk_size: Annotated[int, msgspec.Meta(ge=1, le=CHUNK_SIZE_MAX)] | None = None
    timeout_s: Timeout | None = None
    retries: Annotated[int, msgspec.Meta(ge=0, le=RETRIES_MAX)] = 1
    fail_fast: bool = False
    reduce: Source | None = None
    wait: bool = True
    stream: bool = False


class TaskRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """One attempt of a task, sent by its coordinator to the peer that runs it."""

    job: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    task: Annotated[str, msgspec.Meta(min_length=1, max_length=80)]
    attempt: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]
    coordinator: Address
    count: Annotated[int, msgspec.Meta(ge=0, le=CHUNK_SIZE_MAX)]
    items: msgspec.Raw
    bundle: Sha1 | None = None
    snippet: Source | None = None
    snippet_sha1: Sha1 | None = None
    timeout_s: Timeout | None = None
    sources: Annotated[list[Address], msgspec.Meta(max_length=1024)] = []
    # The request id the job runs under, so the serving peer's log lines carry it too.
    request_id: Annotated[str, msgspec.Meta(max_length=128)] | None = None


class TaskReply(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What an attempt gave: one values array, the failed items apart, the peer that ran it."""

    count: Annotated[int, msgspec.Meta(ge=0, le=CHUNK_SIZE_MAX)]
    values: msgspec.Raw
    errors: list[tuple[int, ErrorInfo]] = []
    peer: Address


T = TypeVar("T")


def work_of(message: JobSpec | TaskRequest) -> Work:
    """What a job or a task runs: exactly one of bundle, snippet, snippet_sha1."""
    named = [
        name
        for name, value in (
            ("bundle", message.bundle),
            ("snippet", message.snippet),
            ("snippet_sha1", message.snippet_sha1),
        )
        if value is not None
    ]
    if len(named) != 1:
        raise InvalidPayload("a job names exactly one of 'bundle', 'snippet' or 'snippet_sha1'")
    if message.bundle is not None:
        return Work(Kind.BUNDLE, bundle=message.bundle)
    if message.snippet is not None:
        return Work(Kind.SNIPPET, snippet=message.snippet)
    return Work(Kind.SNIPPET, snippet_sha1=message.snippet_sha1)


def options_of(spec: JobSpec) -> JobOptions:
    if spec.policy not in POLICY_NAMES:
        raise InvalidPayload(f"'policy' must be one of {', '.join(POLICY_NAMES)}")
    peer_count: int | None = None
    peer_list: tuple[str, ...] = ()
    if isinstance(spec.peers, list):
        peer_list = tuple(str(PeerAddress.parse(p)) for p in spec.peers)
    elif isinstance(spec.peers, int):
        peer_count = spec.peers
    elif spec.peers not in (None, "all"):
        raise InvalidPayload(f"'peers' must be {RANGES['peers']}")
    return JobOptions(
        policy=spec.policy,
        chunk_size=spec.chunk_size,
        timeout_s=spec.timeout_s,
        retries=spec.retries,
        fail_fast=spec.fail_fast,
        peer_count=peer_count,
        peer_list=peer_list,
    )


def chunks_of(spec: JobSpec) -> tuple[list[Any] | None, list[Chunk]]:
    """The job's items: decoded JSON items, or the chunks as sent (each checked, none decoded)."""
    if (spec.items is None) == (spec.chunks is None):
        raise InvalidPayload("a job carries exactly one of 'items' or 'chunks'")
    if spec.items is not None:
        return spec.items, []
    assert spec.chunks is not None
    chunks = [Chunk.from_bytes(bytes(raw)) for raw in spec.chunks]
    if sum(c.count for c in chunks) > ITEMS_MAX:
        raise InvalidPayload(f"at most {ITEMS_MAX} items in one job")
    return None, chunks


_json_decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {}
_msgpack_decoders: dict[type[Any], msgspec.msgpack.Decoder[Any]] = {}
_msgpack_encoder = msgspec.msgpack.Encoder()


def decode_json(data: bytes, kind: type[T]) -> T:
    """``data`` as a ``kind``, or ``InvalidPayload`` saying which field is wrong and why."""
    decoder = _json_decoders.get(kind) or _json_decoders.setdefault(
        kind, msgspec.json.Decoder(kind)
    )
    result: T = _decode(decoder, data, "JSON")
    return result


def decode_msgpack(data: bytes, kind: type[T]) -> T:
    decoder = _msgpack_decoders.get(kind) or _msgpack_decoders.setdefault(
        kind, msgspec.msgpack.Decoder(kind)
    )
    result: T = _decode(decoder, data, "MessagePack")
    return result


def encode_msgpack(message: Any) -> bytes:
    return _msgpack_encoder.encode(message)


def _decode(decoder: Any, data: bytes, what: str) -> Any:
    try:
        return decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise InvalidPayload(_explain(str(exc))) from None
    except msgspec.DecodeError as exc:
        raise InvalidPayload(f"body is not valid {what}: {exc}") from None
    except RecursionError:
        raise InvalidPayload(f"body nests deeper than this peer decodes ({what})") from None


def _explain(message: str) -> str:
    """msgspec's message, with the field's whole accepted range when it names a known field."""
    marker = "at `$."
    if marker not in message:
        return message
    field = message.rsplit(marker, 1)[1].rstrip("`").split(".", 1)[0].split("[", 1)[0]
    accepted = RANGES.get(field)
    return f"{message}: '{field}' must be {accepted}" if accepted else message


__all__ = [
    "CHUNK_BYTES_MAX",
    "JobSpec",
    "TaskReply",
    "TaskRequest",
    "chunks_of",
    "decode_json",
    "decode_msgpack",
    "encode_msgpack",
    "options_of",
    "work_of",
]
