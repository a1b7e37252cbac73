"""The ``disruptor`` command: one subcommand module per area, each with ``register(sub)``.

Subcommands call the ``Peer`` or the ``Client`` only; they hold no logic of their own. Errors a
peer reports are printed as one line (``error: <detail>``) with exit status 1; usage errors exit 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import DisruptorError
from . import peer_cmd

# Subcommand modules, in the order ``--help`` lists them.
COMMAND_MODULES = [peer_cmd]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="disruptor",
        description="Peer-to-peer, fault-tolerant, real-time computation.",
    )
    parser.add_argument("--version", action="version", version=f"disruptor {__version__}")
    parser.add_argument(
        "--log-level", default="warning", help="debug, info, warning or error (default warning)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.WARNING),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        result = args.func(args)
    except DisruptorError as error:
        print(f"error: {error.detail}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return int(result or 0)
