"""Every sans-IO core does no IO and never uses the shared random generator, nor does anything it
imports, at any depth.

The list is the one docs/architecture.md gives; a module added to a core belongs here too. A core
may import only other modules of this list (so ``errors.py`` and ``address.py`` are here), and
no module of the list may import the event loop, sockets, processes, threads, the clock or the
file system, call ``open``, ``print`` or a method that reads or writes the disk, or draw from
the module-level ``random`` (a ``random.Random`` is passed in instead).
"""

from __future__ import annotations

import ast

import pytest

from .imports import PACKAGE, foreign_names, modules, reachable, tree

SANS_IO = [
    "address.py",
    "chunks.py",
    "errors.py",
    "histogram.py",
    "outcome.py",
    "timeseries.py",
    "version.py",
    "bundles/settings.py",
    "bundles/manifest.py",
    "bundles/names.py",
    "bundles/tarstream.py",
    "jobs/dispatcher.py",
    "jobs/faults.py",
    "jobs/model.py",
    "jobs/policies.py",
    "jobs/results.py",
    "jobs/simulator.py",
    "link/signature.py",
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
    "workers/framing.py",
    "snippets/collector.py",
    "snippets/host_wire.py",
    "workers/messages.py",
    "workers/restarts.py",
    "workers/session.py",
]
FORBIDDEN_IMPORTS = {
    "asyncio",
    "aiohttp",
    "io",
    "os",
    "selectors",
    "shutil",
    "socket",
    "subprocess",
    "tempfile",
    "threading",
    "time",
}
FORBIDDEN_CALLS = {"open", "print", "input", "breakpoint"}
# Methods that touch the disk (``pathlib.Path`` and files); pure path arithmetic stays allowed.
DISK_METHODS = {
    "chmod",
    "exists",
    "glob",
    "is_dir",
    "is_file",
    "iterdir",
    "mkdir",
    "read_bytes",
    "read_text",
    "rename",
    "replace",
    "rglob",
    "rmdir",
    "stat",
    "touch",
    "unlink",
    "write_bytes",
    "write_text",
}


def dotted(path: str) -> str:
    return f"{PACKAGE}." + path.removesuffix(".py").replace("/", ".")


CORES = {dotted(p) for p in SANS_IO}


def problems_in(parsed: ast.Module) -> list[str]:
    """What in one module's source breaks the rule (imports, IO calls, the shared random)."""
    found = [f"imports {name}" for name in sorted(foreign_names(parsed) & FORBIDDEN_IMPORTS)]
    for node in ast.walk(parsed):
        if isinstance(node, ast.ImportFrom) and node.module == "random":
            found += [f"imports random.{a.name}" for a in node.names if a.name != "Random"]
        elif isinstance(node, ast.ImportFrom) and node.module == "pathlib":
            found += [f"imports pathlib.{a.name}" for a in node.names if "Pure" not in a.name]
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "random"
            and node.attr != "Random"
        ):
            found.append(f"uses random.{node.attr}")
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS:
                found.append(f"calls {func.id}()")
            # ``str.replace`` and ``bytes.replace`` share a name with ``Path.replace``.
            elif (
                isinstance(func, ast.Attribute)
                and func.attr in DISK_METHODS
                and not (func.attr == "replace" and len(node.args) == 2)
            ):
                found.append(f"calls .{func.attr}()")
    return found


@pytest.mark.parametrize("path", SANS_IO)
def test_core_does_no_io_and_neither_does_what_it_imports(path: str) -> None:
    reached = reachable(dotted(path))
    outside = sorted(reached - CORES)
    assert outside == [], f"{path} imports modules that are not sans-IO cores: {outside}"
    problems = [f"{m}: {p}" for m in sorted(reached) for p in problems_in(tree(m))]
    assert problems == []


def test_the_list_names_real_modules() -> None:
    assert set(modules()) >= CORES


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("import time\nx = time.time()", "imports time"),
        ("import random\nx = random.random()", "uses random.random"),
        ("from random import choice", "imports random.choice"),
        ("from pathlib import Path\nPath('x').read_text()", "calls .read_text()"),
        ("with open('f') as f: pass", "calls open()"),
        ("import os.path", "imports os"),
        ("import asyncio", "imports asyncio"),
    ],
)
def test_the_check_catches_io(source: str, problem: str) -> None:
    assert problem in problems_in(ast.parse(source))


def test_the_check_allows_what_cores_do() -> None:
    source = "import random\nrng = random.Random(3)\nname = 'a.b'.replace('.', '/')"
    assert problems_in(ast.parse(source)) == []
