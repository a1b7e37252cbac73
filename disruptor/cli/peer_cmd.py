"""``disruptor peer HOST:PORT [SEED ...]``: run a peer until Ctrl-C or SIGTERM.

Its settings come from ``disruptor.settings`` (file, environment, flags; flags win), so
``disruptor config show`` with the same flags shows exactly what this peer runs with.
"""

from __future__ import annotations

import argparse
import errno
from typing import Any

from .. import event_loop
from ..errors import Unavailable
from ..logs import LOG_FORMATS, LOG_LEVELS, configure_logging
from ..peer import Peer
from ..settings_sources import load_settings
from .config_cmd import add_settings_options, config_file, flag_settings


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
    parser.add_argument("--cluster-name", help="cluster name (peers of other names are ignored)")
    parser.add_argument("--preset", help="gossip timings: local, lan or wan")
    # Also accepted after the subcommand; SUPPRESS keeps a value given before it.
    parser.add_argument("--log-level", choices=LOG_LEVELS, default=argparse.SUPPRESS)
    parser.add_argument("--log-format", choices=LOG_FORMATS, default=argparse.SUPPRESS)
    add_settings_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    flags = flag_settings(args)
    flags["peer.address"] = (args.address, "HOST:PORT")
    if args.seeds:
        flags["peer.seeds"] = (list(args.seeds), "SEED")
    if args.insecure_dev:
        flags["peer.insecure_dev"] = (True, "--insecure-dev")
    for name, flag, value in (
        ("peer.cluster_name", "--cluster-name", args.cluster_name),
        ("peer.preset", "--preset", args.preset),
        ("log.level", "--log-level", getattr(args, "log_level", None)),
        ("log.format", "--log-format", getattr(args, "log_format", None)),
    ):
        if value is not None:
            flags[name] = (value, flag)
    settings = load_settings(config_file=config_file(args), flags=flags)
    configure_logging(settings.log.level, settings.log.format)
    peer = Peer(settings.peer)
    try:
        event_loop.run(_serve(peer))
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        raise Unavailable(
            f"{peer.address} is in use: another peer or program listens on port "
            f"{peer.address.port} (HTTP over TCP, gossip over UDP); choose another port"
        ) from None
    return 0


async def _serve(peer: Peer) -> None:
    await peer.start()
    print(
        f"disruptor peer {peer.address}\n"
        f"  data directory  {peer.home.root}\n"
        f"  cluster         {peer.settings.cluster_name}\n"
        f"  api token       {peer.home.token_path}\n"
        f"  dashboard       {peer.url}/\n"
        f"  metrics         {peer.url}/metrics",
        flush=True,
    )
    await peer.serve_until_signalled()
