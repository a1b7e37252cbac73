"""The host's request/reply wire: rejection, started, one outcome per item in order, done."""

from __future__ import annotations

import io
import json

from disruptor.snippets.compile import snippet_sha1
from disruptor.snippets.host_main import Host
from disruptor.snippets.policy import SnippetSettings

from .support import run_inline


def test_map_gives_one_outcome_per_item_in_order() -> None:
    replies = run_inline("def handle(item):\n    return 10 // item\n", [1, 0, 5])
    assert replies[0] == {"i": 0, "value": 10}
    assert replies[1]["i"] == 1 and replies[1]["error"]["type"] == "ZeroDivisionError"
    assert "(line 2)" in replies[1]["error"]["message"]
    assert replies[2] == {"i": 2, "value": 2}


def test_reduce_and_combine() -> None:
    assert run_inline(
        "def reduce(results):\n    return sum(results)\n", [1, 2, 3], mode="reduce"
    ) == [{"i": 0, "value": 6}]
    combine = "def combine(acc, item):\n    return acc * item\n"
    assert run_inline(combine, [2, 3, 4], mode="combine") == [{"i": 0, "value": 24}]
    assert run_inline(
        combine, [2, 3], mode="combine", extra={"initial": 10, "has_initial": True}
    ) == [{"i": 0, "value": 60}]
    both = combine + "def reduce(results):\n    return -1\n"
    assert run_inline(both, [2, 3], mode="fold") == [{"i": 0, "value": -1}]
    assert run_inline(combine, [2, 3], mode="fold") == [{"i": 0, "value": 6}]


def test_missing_entry_point_and_bad_source_are_rejected() -> None:
    assert "defines no handle()" in run_inline("x = 1\n")[0]["rejected"]
    assert "Line 1" in run_inline("def handle(:\n")[0]["rejected"]


def test_top_level_error_fails_every_item() -> None:
    replies = run_inline("x = 1 / 0\ndef handle(item):\n    return 1\n", [1, 2])
    assert [r["error"]["type"] for r in replies] == ["ZeroDivisionError"] * 2


def test_compiled_code_is_cached_across_requests() -> None:
    out = io.BytesIO()
    host = Host(SnippetSettings(), out)
    source = "def handle(item):\n    return item\n"
    request = {"sha1": snippet_sha1(source), "source": source, "items": [1], "timeout_s": 1}
    host.handle(request)
    host.handle(request)
    started = [json.loads(x) for x in out.getvalue().splitlines() if b"started" in x]
    assert [s["cached"] for s in started] == [False, True]


def test_memory_error_asks_for_a_fresh_host() -> None:
    replies = run_inline("def handle(item):\n    raise MemoryError\n", [1])
    assert replies[0]["error"]["kind"] == "snippet-budget"


def test_a_generator_finaliser_runs_inside_the_batch_under_a_budget() -> None:
    source = (
        "def g():\n    try:\n        yield 1\n    finally:\n        while True:\n            pass\n"
        "kept = []\n"
        "def handle(item):\n    x = g()\n    next(x)\n    kept.append(x)\n    return item\n"
    )
    # The suspended generator's endless ``finally`` runs when the run's globals are dropped; the
    # budget stops it and the batch still ends with its results and "done".
    assert run_inline(source, [1, 2], timeout_s=0.2) == [{"i": 0, "value": 1}, {"i": 1, "value": 2}]
