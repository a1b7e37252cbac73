"""``disruptor start SHA1`` and ``disruptor stop SHA1``: warm workers of a bundle on a peer.

Both print a table (one row per worker, or per peer with ``--all``/``--peers``); ``--json``
prints the peer's answer instead.
"""

from __future__ import annotations

import argparse
from typing import Any

from .common import add_peer_option, client_for, format_rows, print_json
from .jobs_cmd import add_scope_options, cluster_scope


def register(sub: Any) -> None:
    start: argparse.ArgumentParser = sub.add_parser(
        "start",
        help="start warm workers of a bundle on a peer",
        description="Start COUNT worker processes of bundle SHA1 on the peer (default: the "
        "bundle's own count) and wait until they are ready, then list them. Sending work is "
        "separate.",
    )
    start.add_argument("sha1", metavar="SHA1", help="the bundle, as pushed to the peer")
    start.add_argument("--count", type=int, default=None, help="how many workers to start")
    start.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_scope_options(start)
    add_peer_option(start)
    start.set_defaults(func=run_start)

    stop: argparse.ArgumentParser = sub.add_parser(
        "stop",
        help="stop a bundle's workers on a peer",
        description="Let the bundle's workers finish what they hold, then stop them.",
    )
    stop.add_argument("sha1", metavar="SHA1", help="the bundle whose workers to stop")
    stop.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_scope_options(stop)
    add_peer_option(stop)
    stop.set_defaults(func=run_stop)


def run_start(args: argparse.Namespace) -> int:
    scope = cluster_scope(args)
    with client_for(args) as client:
        if scope is not None:
            peers = client.start_workers_on(args.sha1, scope, args.count)
            answer: dict[str, Any] = {"peers": peers}
        else:
            answer = {"workers": client.start_workers(args.sha1, args.count)}
    if args.json:
        print_json(answer)
    elif scope is not None:
        print(format_peers_workers(answer["peers"]))
    else:
        print(format_workers(answer["workers"]))
    return 1 if _any_failed(answer.get("peers", {})) else 0


def run_stop(args: argparse.Namespace) -> int:
    scope = cluster_scope(args)
    with client_for(args) as client:
        if scope is None:
            client.stop_workers(args.sha1)
            answer: dict[str, Any] = {"stopped": args.sha1}
        else:
            answer = {"peers": client.stop_workers_on(args.sha1, scope)}
    if args.json:
        print_json(answer)
    elif scope is None:
        print(f"stopped the workers of {args.sha1}")
    else:
        rows = [("PEER", "RESULT")]
        for address, reply in sorted(answer["peers"].items()):
            rows.append((address, _error_of(reply) or "stopped"))
        print(format_rows(rows))
    return 1 if _any_failed(answer.get("peers", {})) else 0


WORKER_HEADER = ("WORKER", "NAME", "PID", "STATE", "ISOLATION", "UID", "DONE", "RESTARTS")


def _worker_row(w: dict[str, Any]) -> tuple[str, ...]:
    uid = w.get("uid")
    return (
        str(w.get("id", "?")),
        str(w.get("name", "?")),
        str(w.get("pid") or "-"),
        str(w.get("state", "?")),
        str(w.get("isolation", "?")),
        "-" if uid is None else str(uid),
        str(w.get("tasks_done", 0)),
        str(w.get("restarts", 0)),
    )


def format_workers(workers: list[dict[str, Any]]) -> str:
    """The workers one peer started, as a table."""
    if not workers:
        return "no workers"
    return format_rows([WORKER_HEADER, *(_worker_row(w) for w in workers)])


def format_peers_workers(peers: dict[str, Any]) -> str:
    """The workers started on each peer (or why they did not start there), as a table."""
    rows: list[tuple[str, ...]] = [("PEER", *WORKER_HEADER)]
    failures = []
    for address, reply in sorted(peers.items()):
        error = _error_of(reply)
        if error is not None:
            failures.append(f"{address}: {error}")
            continue
        for w in reply.get("workers", []) if isinstance(reply, dict) else []:
            rows.append((address, *_worker_row(w)))
    lines = [format_rows(rows)] if len(rows) > 1 else ["no workers started"]
    lines += [f"not started on {line}" for line in failures]
    return "\n".join(lines)


def _error_of(reply: Any) -> str | None:
    if isinstance(reply, dict) and "error" in reply:
        error = reply["error"]
        return (
            str(error.get("detail") or error.get("title") or error)
            if isinstance(error, dict)
            else str(error)
        )
    return None


def _any_failed(peers: dict[str, Any]) -> bool:
    return any(_error_of(reply) is not None for reply in peers.values())
