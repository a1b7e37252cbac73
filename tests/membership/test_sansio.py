"""The sans-IO modules of the membership package import no IO and no module-level random."""

from __future__ import annotations

import ast
from pathlib import Path

import disruptor.membership as package

SANS_IO = [
    "awareness",
    "broadcast",
    "codec",
    "config",
    "guard",
    "members",
    "messages",
    "meta",
    "probe",
    "protocol",
    "scenarios",
    "simulator",
    "suspicion",
]
FORBIDDEN = {"asyncio", "aiohttp", "socket", "subprocess", "time", "threading", "selectors"}


def imported_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            if node.module == "random":
                names |= {f"random.{alias.name}" for alias in node.names}
    return names


def test_no_io_imports_in_the_core() -> None:
    root = Path(package.__file__).parent
    for name in SANS_IO:
        names = imported_names(root / f"{name}.py")
        roots = {n.split(".")[0] for n in names}
        assert not roots & FORBIDDEN, f"{name}.py imports {roots & FORBIDDEN}"
        # ``import random`` is allowed for the ``random.Random`` type; functions are not.
        assert not {n for n in names if n.startswith("random.") and n != "random.Random"}, name


def test_no_module_level_random_calls() -> None:
    root = Path(package.__file__).parent
    for name in SANS_IO:
        tree = ast.parse((root / f"{name}.py").read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "random"
            ):
                assert node.attr == "Random", f"{name}.py uses random.{node.attr}"
