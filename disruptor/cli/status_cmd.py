"""``disruptor status [HOST:PORT]``: the peers a peer knows, as a table."""

from __future__ import annotations

import argparse
import time
from typing import Any

from ..client import Client
from .common import DEFAULT_PEER, print_json


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "status",
        help="list the peers a peer knows",
        description="Show the peer at HOST:PORT and every peer it knows: state, since when, "
        "last seen, load and incarnation.",
    )
    parser.add_argument("address", metavar="HOST:PORT", nargs="?", default=DEFAULT_PEER)
    parser.add_argument("--json", action="store_true", help="print the raw JSON instead")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    client = Client([args.address])
    try:
        result = client.peers()
    finally:
        client.close()
    if args.json:
        print_json(result)
    else:
        print(format_table(result["peers"], time.time()))
    return 0


def _ago(now: float, then: float) -> str:
    seconds = max(0.0, now - then)
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.0f}h ago"


def format_table(peers: list[dict[str, Any]], now: float) -> str:
    header = ("ADDRESS", "STATE", "SINCE", "LAST SEEN", "RUNNING", "QUEUED", "FREE", "INC")
    rows = [header]
    for p in peers:
        load = p.get("load", {})
        rows.append(
            (
                str(p["address"]) + (" *" if p.get("self") else ""),
                str(p["state"]),
                _ago(now, float(p["since"])),
                "now" if p.get("self") else _ago(now, float(p["last_seen"])),
                str(load.get("tasks_running", 0)),
                str(load.get("queue_length", 0)),
                str(load.get("worker_slots_free", 0)),
                str(p["incarnation"]),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )
