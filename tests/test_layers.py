"""Layers import downward only, and no two modules or packages import each other.

Each top-level module or subpackage of ``disruptor`` (a *unit*) has a rank; a unit may import only
units of a lower rank (and its own modules). Every import counts, at any depth and under
``TYPE_CHECKING`` too, so a part cannot reach up to the API or the composition root even for a
type. A new unit must be given its rank here, which is where it is decided what it may use.
"""

from __future__ import annotations

import pytest

from .imports import PACKAGE, cycles, graph, modules

# From the bottom: the error tree, names of things, then what any part may use, the peer link,
# the parts in dependency order, the record of parts and what reads it, the HTTP API and the
# other outside-facing code, the composition root, the commands, the public facade.
LAYERS = {
    "errors": 0,
    "version": 0,
    "address": 1,
    "outcome": 2,
    "histogram": 2,
    "http_stats": 3,
    "timeseries": 2,
    "metric_help": 2,
    "logs": 2,
    "event_loop": 2,
    "home": 2,
    "ports": 2,
    "worker_runtime": 2,
    "chunks": 3,
    "link": 3,
    "bundles": 4,
    "workers": 5,
    "snippets": 5,
    "membership": 5,
    "jobs": 6,
    "parts": 7,
    "prometheus": 8,
    "settings": 8,
    "metrics": 9,
    "api": 10,
    "client": 10,
    "executor": 11,
    "settings_sources": 11,
    "peer": 12,
    "cli": 13,
    "__main__": 14,
    "__init__": 15,
}


def unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def unit_graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for module, imported in graph().items():
        for other in imported:
            if unit(other) != unit(module):
                edges.setdefault(unit(module), set()).add(unit(other))
    return edges


def test_every_unit_has_a_layer() -> None:
    assert {unit(m) for m in modules()} == set(LAYERS)


def test_imports_go_downward_only() -> None:
    upward = sorted(
        f"{module} -> {other}"
        for module, imported in graph().items()
        for other in imported
        if unit(other) != unit(module) and LAYERS[unit(other)] >= LAYERS[unit(module)]
    )
    assert upward == [], "imports that do not go down a layer:\n" + "\n".join(upward)


def test_no_import_circle_between_packages() -> None:
    assert cycles(unit_graph()) == []


def test_no_import_circle_between_modules() -> None:
    assert cycles(graph()) == []


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, [["a", "b", "c"]]),  # transitively
        ({"a": {"b"}, "b": set()}, []),
    ],
)
def test_the_circle_check_finds_circles(
    edges: dict[str, set[str]], expected: list[list[str]]
) -> None:
    assert cycles(edges) == expected


def test_relative_imports_are_followed() -> None:
    # ``from ..errors import X`` in a subpackage, ``from . import x`` of a sibling module.
    assert f"{PACKAGE}.errors" in graph()[f"{PACKAGE}.jobs.dispatcher"]
    assert f"{PACKAGE}.api.jobs" in graph()[f"{PACKAGE}.api.app"]
