"""``disruptor peer HOST:PORT [SEED ...]``: run a peer until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from ..address import Address
from ..config import PeerConfig
from ..home import default_home
from ..peer import Peer


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "peer",
        help="run a peer",
        description="Run a peer on HOST:PORT (HTTP and gossip share the port). Name any live "
        "peers as seeds and this one soon knows them all. Stops gracefully on Ctrl-C or SIGTERM.",
    )
    parser.add_argument("address", metavar="HOST:PORT", help="where this peer listens")
    parser.add_argument("seeds", metavar="SEED", nargs="*", help="HOST:PORT of any other peer")
    parser.add_argument(
        "--insecure-dev",
        action="store_true",
        help="DEVELOPMENT ONLY: accept bundles that are unsigned or signed by untrusted keys",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = PeerConfig(
        address=Address.parse(args.address),
        seeds=tuple(Address.parse(s) for s in args.seeds),
        home=default_home(),
        insecure_dev=bool(args.insecure_dev),
    )
    peer = Peer(config)
    asyncio.run(_serve(peer))
    return 0


async def _serve(peer: Peer) -> None:
    await peer.start()
    print(
        f"disruptor peer {peer.address}\n"
        f"  data directory  {peer.home.root}\n"
        f"  cluster         {peer.config.cluster_name}\n"
        f"  api token       {peer.home.token_path}\n"
        f"  dashboard       {peer.url}/",
        flush=True,
    )
    await peer.serve_until_signalled()
