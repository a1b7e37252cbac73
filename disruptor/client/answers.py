"""A job as the client sends it (items cut into MessagePack chunks) and its answers read back.

The client cuts the items into chunks once, here, and the peers carry those bytes to the workers
untouched; the answer's values come back as one MessagePack array decoded in one call. Rule:
nothing here builds an object per item on the way to ``map``'s list of values; ``outcomes`` (an
``ItemOutcome`` per item, with the peer that ran it) is the slower, richer view.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import msgspec

from ..chunks import Chunk
from ..errors import DisruptorError, JobCancelled, ProtocolError
from ..outcome import ErrorInfo, ItemOutcome
from .work import Work, work_body

# Items per chunk the client cuts, unless the job says ``chunk_size``: the task size the peers
# themselves choose for large jobs, so a chunk is a task and nothing is cut again.
CHUNK_ITEMS = 1000
_encoder = msgspec.msgpack.Encoder()


def job_request(work: Work, items: Sequence[Any], options: Mapping[str, Any]) -> bytes:
    """A job as ``POST /jobs`` takes it in MessagePack: the work, its chunks, its options."""
    return _encoder.encode(job_map(work, items, options))


def job_map(work: Work, items: Sequence[Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """A job's fields, its items already cut into encoded chunks (``msgspec.Raw``)."""
    body: dict[str, Any] = work_body(work)
    size = int(options.get("chunk_size") or CHUNK_ITEMS)
    body["chunks"] = [
        msgspec.Raw(Chunk.of(items[start : start + size], first_index=start).data)
        for start in range(0, len(items), size)
    ]
    for key, value in options.items():
        if value is not None:
            body[key] = value
    return body


def error_of(entry: Mapping[str, Any]) -> ErrorInfo:
    return ErrorInfo.from_json(dict(entry))


def raise_if_cancelled(answer: Mapping[str, Any]) -> None:
    if answer.get("state") == "cancelled":
        raise JobCancelled(f"job {answer.get('id')} was cancelled")


def values_or_raise(answer: Mapping[str, Any]) -> list[Any]:
    """Every item's value in order; the first failed item's error raised as its exception."""
    raise_if_cancelled(answer)
    errors = answer.get("errors") or []
    if errors:
        raise error_of(errors[0]).to_exception()
    values = answer.get("values")
    if not isinstance(values, list):
        raise ProtocolError("the peer's answer holds no list of values")
    progress = answer.get("progress") or {}
    if progress.get("done", len(values)) < progress.get("total", 0):
        raise DisruptorError(f"job {answer.get('id')} stopped before every item had a result")
    return values


def folded_or_raise(answer: Mapping[str, Any]) -> Any:
    """A job with a reduce snippet: the folded value, or the fold's error raised."""
    raise_if_cancelled(answer)
    if "reduce_error" in answer:
        error = answer["reduce_error"]
        cls = DisruptorError.registry.get(str(error.get("kind")), DisruptorError)
        raise cls(str(error.get("message", "")))
    return answer.get("reduced")


def _peers_by_index(runs: Sequence[Mapping[str, Any]], total: int) -> list[str | None]:
    peers: list[str | None] = [None] * total
    for run in runs:
        peer = run.get("peer")
        if "start" in run:
            start = int(run["start"])
            peers[start : start + int(run["count"])] = [peer] * int(run["count"])
        else:
            for index in run.get("indexes", ()):
                peers[int(index)] = peer
    return peers


def outcomes_of(answer: Mapping[str, Any]) -> list[ItemOutcome]:
    """One ``ItemOutcome`` per item, with the peer that ran it; items with no result (a stopped
    job) report ``job-cancelled``."""
    raise_if_cancelled(answer)
    values = list(answer.get("values") or [])
    total = int((answer.get("progress") or {}).get("total", len(values)))
    peers = _peers_by_index(answer.get("chunks") or [], total)
    outcomes = [
        ItemOutcome(value=value, peer=peer) for value, peer in zip(values, peers, strict=False)
    ]
    done = {i for run in answer.get("chunks") or [] for i in _indexes(run)}
    for index in range(total):
        if index not in done:
            stopped = ItemOutcome.failure(JobCancelled.slug, "JobCancelled", "the job was stopped")
            outcomes[index] = stopped
    for entry in answer.get("errors") or []:
        index = int(entry["index"])
        outcomes[index] = ItemOutcome(error=error_of(entry), peer=entry.get("peer"))
    return outcomes


def _indexes(run: Mapping[str, Any]) -> Sequence[int]:
    if "start" in run:
        return range(int(run["start"]), int(run["start"]) + int(run["count"]))
    return [int(i) for i in run.get("indexes", ())]


def piece_outcomes(piece: Mapping[str, Any]) -> Iterator[tuple[int, ItemOutcome]]:
    """``(index, ItemOutcome)`` for each item of one streamed piece of results."""
    indexes = _indexes(piece)
    values = piece.get("values") or []
    peer = piece.get("peer")
    failed = {int(e["index"]): e for e in piece.get("errors") or []}
    for index, value in zip(indexes, values, strict=False):
        entry = failed.get(index)
        if entry is not None:
            yield index, ItemOutcome(error=error_of(entry), peer=peer)
        else:
            yield index, ItemOutcome(value=value, peer=peer)
