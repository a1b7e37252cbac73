"""Helpers shared by the subcommands: the ``--peer`` option, a client, printing."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from ..client import Client

DEFAULT_PEER = os.environ.get("DISRUPTOR_PEER", "127.0.0.1:1111")


def add_peer_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--peer",
        action="append",
        metavar="HOST:PORT",
        help=f"peer to talk to; repeat for failover (default $DISRUPTOR_PEER or {DEFAULT_PEER})",
    )


def client_for(args: argparse.Namespace) -> Client:
    peers = getattr(args, "peer", None) or [DEFAULT_PEER]
    return Client(peers)


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def format_rows(rows: Sequence[Sequence[str]]) -> str:
    """Rows of text as left-aligned columns two spaces apart; the first row is the header."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
