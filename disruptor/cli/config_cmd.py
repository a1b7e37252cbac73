"""``disruptor config show``: the effective settings and where each came from.

It reads the same layers ``disruptor peer`` does (the file, ``DISRUPTOR_*`` variables, ``--set``
flags), so an operator can check what a peer would run with before starting it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import BadRequest
from ..settings_sources import LoadedSettings, load_settings, parse_assignment
from .common import print_json


def add_settings_options(parser: argparse.ArgumentParser) -> None:
    """``--config FILE`` and ``--set SECTION.KEY=VALUE``, shared with ``disruptor peer``."""
    parser.add_argument(
        "--config",
        metavar="FILE",
        type=Path,
        help="settings file (default $DISRUPTOR_HOME/config.toml)",
    )
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one setting (repeatable), e.g. --set http.keepalive_timeout_s=30",
    )


def config_file(args: argparse.Namespace) -> Path | None:
    """The ``--config`` file; one named there must exist (the default one may be absent)."""
    path: Path | None = getattr(args, "config", None)
    if path is not None and not path.is_file():
        raise BadRequest(f"--config {path}: no such file")
    return path


def flag_settings(args: argparse.Namespace) -> dict[str, tuple[Any, str]]:
    """The ``--set`` flags as ``load_settings`` takes them."""
    flags: dict[str, tuple[Any, str]] = {}
    for text in getattr(args, "settings", None) or []:
        name, value = parse_assignment(text)
        flags[name] = (value, "--set")
    return flags


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "config", help="show the effective settings", description=__doc__
    )
    actions = parser.add_subparsers(dest="config_command", metavar="ACTION")
    show = actions.add_parser(
        "show",
        help="print every setting, its value and its source",
        description="Print every setting with its value and where it came from: default, "
        "file, env or flag (flags beat the environment, which beats the file).",
    )
    add_settings_options(show)
    show.add_argument("--json", action="store_true", help="print JSON instead of a table")
    show.set_defaults(func=run_show)
    parser.set_defaults(func=lambda _args: parser.error("give an ACTION: show"))


def run_show(args: argparse.Namespace) -> int:
    settings = load_settings(config_file=config_file(args), flags=flag_settings(args))
    if args.json:
        print_json(
            {
                "config_file": str(settings.config_file),
                "settings": [e.to_json() for e in settings.entries],
            }
        )
    else:
        print(render_table(settings))
    return 0


def render_table(settings: LoadedSettings) -> str:
    rows = [(e.name, _text(e.to_json()["value"]), e.source) for e in settings.entries]
    name_w = max(len(r[0]) for r in rows)
    value_w = min(40, max(len(r[1]) for r in rows))
    lines = [f"# settings file: {settings.config_file}"]
    lines.append(f"{'SETTING':<{name_w}}  {'VALUE':<{value_w}}  SOURCE")
    for name, value, source in rows:
        lines.append(f"{name:<{name_w}}  {value:<{value_w}}  {source}")
    return "\n".join(lines)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "(none)"
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items()) or "(none)"
    if value is None:
        return "(none)"
    return str(value)
