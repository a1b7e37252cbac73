"""The ``disruptor`` command: one subcommand module per area, each with ``register(sub)``.

Subcommands call the ``Peer`` or the ``Client`` only; they hold no logic of their own. Rule: an
error is one line on stderr, never a traceback: what a peer reports, and what the system says
about a file or a port, as ``error: <what>`` with exit status 1; a usage error as
``disruptor CMD: error: <what>`` with exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from ..errors import DisruptorError, Unauthorized
from ..home import Home
from ..logs import LOG_FORMATS, LOG_LEVELS, configure_logging
from ..version import __version__
from . import (
    bundles_cmd,
    completion_cmd,
    config_cmd,
    demo_cmd,
    jobs_cmd,
    peer_cmd,
    status_cmd,
    workers_cmd,
)

# Subcommand modules, in the order ``--help`` lists them.
COMMAND_MODULES = [
    peer_cmd,
    status_cmd,
    config_cmd,
    workers_cmd,
    bundles_cmd,
    jobs_cmd,
    demo_cmd,
    completion_cmd,
]


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error in one line (the usage itself is one ``--help`` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
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
    # Under the shell's completion (argcomplete's variables set) this answers and exits; other
    # runs do not load it.
    if "_ARGCOMPLETE" in os.environ:
        import argcomplete

        argcomplete.autocomplete(parser)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    configure_logging(args.log_level or "warning", args.log_format or "text")
    try:
        result = args.func(args)
    except Unauthorized as error:
        print(f"error: {error.detail}; {token_hint(Home.from_env())}", file=sys.stderr)
        return 1
    except DisruptorError as error:
        print(f"error: {error.detail}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"error: {describe_os_error(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return int(result or 0)


def token_hint(home: Home) -> str:
    """What to do when a peer refuses the API token this command sent."""
    return (
        f"the peer refused the API token in {home.token_path}. A peer accepts the token of its "
        "own data directory: set DISRUPTOR_HOME to that directory (the peer prints it, and its "
        "'api token' file, when it starts) or copy its api.token to this path"
    )


def describe_os_error(error: OSError) -> str:
    """An error of the system (a missing file, a port in use) as one line, without ``[Errno]``."""
    reason = error.strerror or str(error)
    if error.filename is not None:
        return f"{error.filename}: {reason}"
    return reason
