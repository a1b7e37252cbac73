"""Every sans-IO core imports no IO and never uses the module-level random generator.

The list is the one docs/architecture.md gives; a module added to a core belongs here too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import disruptor

ROOT = Path(disruptor.__file__).parent

SANS_IO = [
    "bundles/limits.py",
    "bundles/manifest.py",
    "bundles/tarstream.py",
    "jobs/dispatcher.py",
    "jobs/model.py",
    "jobs/policies.py",
    "membership/awareness.py",
    "membership/broadcast.py",
    "membership/codec.py",
    "membership/exchanges.py",
    "membership/settings.py",
    "membership/guard.py",
    "membership/members.py",
    "membership/messages.py",
    "membership/outputs.py",
    "membership/meta.py",
    "membership/probe.py",
    "membership/protocol.py",
    "membership/sections.py",
    "membership/scenarios.py",
    "membership/simulator.py",
    "membership/suspicion.py",
    "membership/wire.py",
    "timeseries.py",
    "workers/framing.py",
    "workers/messages.py",
    "workers/restarts.py",
    "workers/session.py",
]
FORBIDDEN = {"asyncio", "aiohttp", "selectors", "socket", "subprocess", "threading", "time"}


def imports_of(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


@pytest.mark.parametrize("module", SANS_IO)
def test_core_imports_no_io(module: str) -> None:
    names = imports_of(ast.parse((ROOT / module).read_text()))
    assert not {n.split(".")[0] for n in names} & FORBIDDEN, names
    # ``random`` may be imported for the ``random.Random`` type, whose instance is passed in.
    assert not {n for n in names if n.startswith("random.") and n != "random.Random"}


@pytest.mark.parametrize("module", SANS_IO)
def test_core_never_calls_the_shared_random_generator(module: str) -> None:
    for node in ast.walk(ast.parse((ROOT / module).read_text())):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "random"
        ):
            assert node.attr == "Random", f"{module} uses random.{node.attr}"


def test_the_list_names_real_modules() -> None:
    assert all((ROOT / module).is_file() for module in SANS_IO)
