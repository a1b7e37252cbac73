"""The ``disruptor`` command: one subcommand module per area, each with ``register(sub)``.

Subcommands call the ``Peer`` or the ``Client`` only; they hold no logic of their own. Errors a
peer reports are printed as one line (``error: <detail>``) with exit status 1; usage errors exit 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..errors import DisruptorError
from ..logs import LOG_FORMATS, LOG_LEVELS, configure_logging
from ..version import __version__
from . import bundles_cmd, config_cmd, demo_cmd, jobs_cmd, peer_cmd, status_cmd, workers_cmd

# Subcommand modules, in the order ``--help`` lists them.
COMMAND_MODULES = [peer_cmd, status_cmd, config_cmd, workers_cmd, bundles_cmd, jobs_cmd, demo_cmd]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="disruptor",
        description="Peer-to-peer, fault-tolerant, real-time computation.",
    )
    parser.add_argument("--version", action="version", version=f"disruptor {__version__}")
    parser.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        help="debug, info, warning or error (default warning, or log.level in the settings)",
    )
    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        help="text or json, one object a line (default text, or log.format in the settings)",
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
    configure_logging(args.log_level or "warning", args.log_format or "text")
    try:
        result = args.func(args)
    except DisruptorError as error:
        print(f"error: {error.detail}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return int(result or 0)
