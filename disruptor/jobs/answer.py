"""What a job's answers hold: its results as the public JSON form or the MessagePack form.

One shape for both encodings. A finished job answers ``values`` (every item's value, in item
order, ``null`` where it failed), ``errors`` (one ``{"index", "kind", "type", "message",
"traceback"?, "peer"}`` per failed item, in item order) and ``chunks`` (which peer gave which
items: ``{"start", "count", "peer"}``, or ``{"indexes", "peer"}`` for items run again alone).
A streamed piece is the same for some items: ``{"start", "count"}`` or ``{"indexes"}``, with
``values``, ``errors`` and ``peer``. A broadcast job answers ``peers``: one ``{"peer", "values",
"errors"}`` per peer, each over the whole item list.

Rule: in MessagePack the values stay the encoded arrays the workers made (``msgspec.Raw``),
joined without decoding; only the JSON form decodes them, once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from ..chunks import ChunkResult
from ..outcome import ErrorInfo
from .job import Job
from .model import JobState
from .results import Piece


def error_json(index: int, error: ErrorInfo, peer: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"index": index, **error.to_json()}
    if peer is not None:
        body["peer"] = peer
    return body


def _where(indexes: Sequence[int]) -> dict[str, Any]:
    if isinstance(indexes, range) and indexes.step == 1:
        return {"start": indexes.start, "count": len(indexes)}
    return {"indexes": list(indexes)}


def _values(result: ChunkResult, binary: bool) -> Any:
    return msgspec.Raw(result.values) if binary else result.values_list()


def piece_body(piece: Piece, binary: bool) -> dict[str, Any]:
    """One delivered piece of results, as a stream line or frame carries it."""
    peer = piece.result.peer
    return {
        **_where(piece.indexes),
        "values": _values(piece.result, binary),
        "errors": [error_json(i, e, peer) for i, e in piece.errors()],
        "peer": peer,
    }


def _peer_body(peer: str, result: ChunkResult, binary: bool) -> dict[str, Any]:
    return {
        "peer": peer,
        "values": _values(result, binary),
        "errors": [error_json(i, e, peer) for i, e in result.errors],
    }


def results_body(job: Job, binary: bool) -> dict[str, Any]:
    """The results part of a finished (or running) job's answer."""
    dispatcher = job.dispatcher
    if job.broadcast:
        by_peer = dispatcher.peer_results.by_peer
        return {"peers": [_peer_body(p, r, binary) for p, r in sorted(by_peer.items())]}
    table = dispatcher.results
    values: Any = msgspec.Raw(table.packed_values()) if binary else table.values()
    return {
        "values": values,
        "errors": [error_json(i, e, p) for i, e, p in table.errors()],
        "chunks": [{**_where(indexes), "peer": peer} for indexes, peer in table.runs()],
    }


def job_body(job: Job, *, results: bool = True, binary: bool = False) -> dict[str, Any]:
    """A job's whole answer: its summary, its results (unless left out), its fold."""
    body = job.summary()
    if results:
        body.update(results_body(job, binary))
    if job.reduce is not None and job.state is JobState.COMPLETED:
        if job.reduce_error is not None:
            body["reduce_error"] = job.reduce_error
        else:
            body["reduced"] = job.reduced
    return body


def fold_input(job: Job) -> list[Any]:
    """What a reduce snippet folds: the values of the items that did not fail, in item order."""
    table = job.dispatcher.results
    failed = table.failed_indexes()
    values = table.values()
    if not failed:
        return values
    return [v for i, v in enumerate(values) if i not in failed]


def delivered_indexes(pieces: Iterable[Piece]) -> list[int]:
    return [index for piece in pieces for index in piece.indexes]
