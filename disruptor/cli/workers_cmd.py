"""``disruptor start SHA1`` and ``disruptor stop SHA1``: warm workers of a bundle on a peer."""

from __future__ import annotations

import argparse
from typing import Any

from .common import add_peer_option, client_for, print_json
from .jobs_cmd import add_scope_options, cluster_scope


def register(sub: Any) -> None:
    start: argparse.ArgumentParser = sub.add_parser(
        "start",
        help="start warm workers of a bundle on a peer",
        description="Start COUNT worker processes of bundle SHA1 on the peer (default: the "
        "bundle's own count) and wait until they are ready. Sending work is separate.",
    )
    start.add_argument("sha1", metavar="SHA1", help="the bundle, as pushed to the peer")
    start.add_argument("--count", type=int, default=None, help="how many workers to start")
    add_scope_options(start)
    add_peer_option(start)
    start.set_defaults(func=run_start)

    stop: argparse.ArgumentParser = sub.add_parser(
        "stop",
        help="stop a bundle's workers on a peer",
        description="Let the bundle's workers finish what they hold, then stop them.",
    )
    stop.add_argument("sha1", metavar="SHA1", help="the bundle whose workers to stop")
    add_scope_options(stop)
    add_peer_option(stop)
    stop.set_defaults(func=run_stop)


def run_start(args: argparse.Namespace) -> int:
    scope = cluster_scope(args)
    if scope is not None:
        with client_for(args) as client:
            print_json({"peers": client.start_workers_on(args.sha1, scope, args.count)})
        return 0
    with client_for(args) as client:
        workers = client.start_workers(args.sha1, args.count)
    print_json({"workers": workers})
    return 0


def run_stop(args: argparse.Namespace) -> int:
    scope = cluster_scope(args)
    if scope is not None:
        with client_for(args) as client:
            print_json({"peers": client.stop_workers_on(args.sha1, scope)})
        return 0
    with client_for(args) as client:
        client.stop_workers(args.sha1)
    return 0
