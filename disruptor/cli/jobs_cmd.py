"""``disruptor send`` (one item) and ``disruptor submit`` (a file of items, streamed back).

``send HOST:PORT SHA1 JSON`` or ``send HOST:PORT --snippet FILE.py JSON`` prints the item's
value as JSON. ``submit SHA1|--snippet FILE --peer HOST:PORT --items FILE.jsonl`` sends one JSON
value a line as one job, shows a progress bar on stderr and writes each result to stdout as NDJSON
(``{"index", "value"|"error", "peer"}``) as it completes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..client import Client
from ..client.jobs import BundleRef, Snippet, Work
from ..errors import InvalidPayload
from .common import add_peer_option, client_for, print_json


def register(sub: Any) -> None:
    send = sub.add_parser(
        "send",
        help="run one item on a peer and print its result",
        description="Run one JSON item with a bundle (by SHA-1) or a snippet (--snippet FILE.py) "
        "through the peer at HOST:PORT, which places it by policy, and print the result.",
    )
    send.add_argument("address", metavar="HOST:PORT", help="the peer to send to")
    send.add_argument("args", nargs="+", metavar="SHA1 JSON | JSON", help="bundle and item")
    send.add_argument("--snippet", type=Path, metavar="FILE.py", help="run this snippet")
    send.add_argument("--policy", help="placement policy (default least-loaded)")
    send.set_defaults(func=run_send)

    submit = sub.add_parser(
        "submit",
        help="run a file of items as one job, streaming results as NDJSON",
        description="Send every line of --items (one JSON value a line) as one job to the peer; "
        "results are written to stdout as NDJSON as they complete, with a progress bar on stderr.",
    )
    submit.add_argument("bundle", nargs="?", metavar="SHA1", help="the bundle to run")
    submit.add_argument("--snippet", type=Path, metavar="FILE.py", help="run this snippet")
    submit.add_argument("--items", type=Path, required=True, metavar="FILE.jsonl")
    submit.add_argument("--policy", help="least-loaded, round-robin, weighted, ... broadcast")
    submit.add_argument("--peers", type=int, metavar="N", help="use at most N peers")
    submit.add_argument("--chunk-size", type=int, metavar="N", help="items per task")
    submit.add_argument("--timeout", type=float, metavar="S", help="per-item timeout, seconds")
    submit.add_argument("--retries", type=int, metavar="N", help="retries after a worker crash")
    submit.add_argument("--fail-fast", action="store_true", help="stop at the first item error")
    submit.add_argument("--reduce", type=Path, metavar="FILE.py", help="fold results (snippet)")
    submit.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_peer_option(submit)
    submit.set_defaults(func=run_submit)


def add_scope_options(parser: argparse.ArgumentParser) -> None:
    """``--all`` / ``--peers N``: act on every live peer, or on N of them (the least loaded)."""
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--all", action="store_true", help="on every live peer of the cluster")
    scope.add_argument("--peers", type=int, metavar="N", help="on N peers, least loaded first")


def cluster_scope(args: argparse.Namespace) -> str | int | None:
    if getattr(args, "all", False):
        return "all"
    peers = getattr(args, "peers", None)
    return int(peers) if peers is not None else None


def _work(bundle: str | None, snippet: Path | None) -> Work:
    if snippet is not None:
        if bundle is not None:
            raise InvalidPayload("give a bundle SHA-1 or --snippet, not both")
        return Snippet(snippet.read_text())
    if bundle is None:
        raise InvalidPayload("give a bundle SHA-1 or --snippet FILE.py")
    return BundleRef(bundle)


def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidPayload(f"{what} is not valid JSON: {exc}") from None


def run_send(args: argparse.Namespace) -> int:
    if args.snippet is not None:
        if len(args.args) != 1:
            raise InvalidPayload("with --snippet, give exactly one JSON item")
        work, item_text = _work(None, args.snippet), args.args[0]
    else:
        if len(args.args) != 2:
            raise InvalidPayload("give a bundle SHA-1 and one JSON item")
        work, item_text = _work(args.args[0], None), args.args[1]
    item = _json(item_text, "the item")
    with Client([args.address]) as client:
        print_json(client.send(work, item, policy=args.policy))
    return 0


def read_items(path: Path) -> list[Any]:
    items = []
    with path.open() as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                items.append(_json(line, f"{path}:{number}"))
    return items


def run_submit(args: argparse.Namespace) -> int:
    work = _work(args.bundle, args.snippet)
    items = read_items(args.items)
    options = {
        "policy": args.policy,
        "peers": args.peers,
        "chunk_size": args.chunk_size,
        "timeout_s": args.timeout,
        "retries": args.retries,
        "fail_fast": True if args.fail_fast else None,
    }
    failed = 0
    with client_for(args) as client:
        if args.reduce is not None:
            print_json(client.map(work, items, reduce=args.reduce.read_text(), **options))
            return 0
        # Drawn from the first result on: a job the peer refuses leaves one error line alone.
        bars: list[Any] = []
        try:
            for index, outcome in client.stream_outcomes(work, items, **options):
                failed += 0 if outcome.ok else 1
                sys.stdout.write(json.dumps({"index": index, **outcome.to_json()}) + "\n")
                if not bars:
                    from tqdm import tqdm  # only once there is a result to count

                    bars.append(
                        tqdm(total=len(items), unit="item", file=sys.stderr,
                             disable=args.no_progress, leave=True)
                    )  # fmt: skip
                bars[0].update(1)
        finally:
            for bar in bars:
                bar.close()
            sys.stdout.flush()
    return 1 if failed else 0
