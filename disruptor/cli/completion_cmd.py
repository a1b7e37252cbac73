"""``disruptor completion bash|zsh|fish``: the shell code that completes ``disruptor`` commands.

Completion is argcomplete's: the shell code calls ``disruptor`` itself to complete a command
line, so commands, options and choices always match the installed version.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

SHELLS = ("bash", "zsh", "fish")
HOW = {
    "bash": 'eval "$(disruptor completion bash)"   # in ~/.bashrc',
    "zsh": 'eval "$(disruptor completion zsh)"    # in ~/.zshrc, after compinit',
    "fish": "disruptor completion fish | source   # in ~/.config/fish/config.fish",
}


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "completion",
        help="print shell code that completes disruptor commands",
        description="Print the code that makes SHELL complete disruptor's commands, options "
        "and choices. " + " ".join(f"{shell}: {line}." for shell, line in HOW.items()),
    )
    parser.add_argument("shell", metavar="SHELL", choices=SHELLS, help="bash, zsh or fish")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from argcomplete.shell_integration import shellcode

    sys.stdout.write(shellcode(["disruptor"], shell=args.shell))
    return 0
