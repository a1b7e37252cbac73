"""The host's side of the wire: started, parts covering every item in order, done; or rejected."""

from __future__ import annotations

import io
from typing import Any

import msgspec
import pytest

from disruptor.snippets import host_main
from disruptor.snippets.host_main import Host
from disruptor.snippets.host_wire import BadItems, Done, Mode, Part, Rejected, Started
from disruptor.snippets.settings import SnippetSettings

from .support import frames_of, make_run, run_inline


def host_frames(host: Host, source: str, items: list[Any], **kwargs: Any) -> list[Any]:
    out = io.BytesIO()
    host.out = out
    host.handle(make_run(source, items, **kwargs))
    return frames_of(out.getvalue())


def parts_of(frames: list[Any]) -> list[Part]:
    assert isinstance(frames[0], Started) and isinstance(frames[-1], Done), frames
    parts = frames[1:-1]
    assert all(isinstance(p, Part) for p in parts)
    return parts


def test_map_gives_one_outcome_per_item_in_order() -> None:
    replies = run_inline("def handle(item):\n    return 10 // item\n", [1, 0, 5])
    assert replies[0] == {"i": 0, "value": 10}
    assert replies[1]["i"] == 1 and replies[1]["error"]["type"] == "ZeroDivisionError"
    assert "(line 2)" in replies[1]["error"]["message"]
    assert replies[2] == {"i": 2, "value": 2}


def test_many_items_and_failures_keep_their_places() -> None:
    items = list(range(-5000, 5000))
    replies = run_inline("def handle(item):\n    return 100 // (item % 7)\n", items)
    assert [r["i"] for r in replies] == list(range(len(items)))
    for item, reply in zip(items, replies, strict=True):
        if item % 7 == 0:
            assert reply["error"]["type"] == "ZeroDivisionError"
        else:
            assert reply["value"] == 100 // (item % 7)


def test_items_failing_alike_share_one_error_entry() -> None:
    frames = host_frames(
        Host(SnippetSettings(), io.BytesIO()), "def handle(item):\n    1 / 0\n", [1] * 50
    )
    (part,) = parts_of(frames)
    assert [offset for offset, _ in part.errors] == list(range(50))
    assert {index for _, index in part.errors} == {0} and len(part.infos) == 1


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


def test_items_that_are_not_the_array_announced_are_refused() -> None:
    host = Host(SnippetSettings(), io.BytesIO())
    source = "def handle(item):\n    return item\n"
    run = make_run(source, [1, 2, 3])
    for bad in (
        msgspec.structs.replace(run, count=4),
        msgspec.structs.replace(run, items=b"\x93\x01"),
        msgspec.structs.replace(run, items=b"\x93\xc1\xc1\xc1"),
        msgspec.structs.replace(run, items=msgspec.msgpack.encode({"a": 1})),
    ):
        host.out = io.BytesIO()
        host.handle(bad)
        (frame,) = frames_of(host.out.getvalue())
        assert isinstance(frame, BadItems)


def test_top_level_error_fails_every_item() -> None:
    replies = run_inline("x = 1 / 0\ndef handle(item):\n    return 1\n", [1, 2])
    assert [r["error"]["type"] for r in replies] == ["ZeroDivisionError"] * 2


def test_a_run_can_start_part_way_and_flush_each_item() -> None:
    host = Host(SnippetSettings(), io.BytesIO())
    frames = host_frames(
        host, "def handle(item):\n    return item * 3\n", list(range(10)), first=6, flush_each=True
    )
    parts = parts_of(frames)
    assert [p.first for p in parts] == [6, 7, 8, 9]
    assert [msgspec.msgpack.decode(p.values) for p in parts] == [[18], [21], [24], [27]]


def test_a_long_chunk_is_answered_in_several_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every slice ends a part when the interval is zero; parts must tile the chunk in order.
    monkeypatch.setattr(host_main, "PART_INTERVAL_S", 0.0)
    host = Host(SnippetSettings(), io.BytesIO())
    frames = host_frames(host, "def handle(item):\n    return -item\n", list(range(3000)))
    parts = parts_of(frames)
    assert len(parts) > 1
    values = [v for p in parts for v in msgspec.msgpack.decode(p.values)]
    assert values == [-i for i in range(3000)]
    assert [p.first for p in parts] == [0] + [
        parts[i].first + len(msgspec.msgpack.decode(parts[i].values)) for i in range(len(parts) - 1)
    ]


def test_stop_iteration_from_handle_fails_that_item_only() -> None:
    source = "def handle(item):\n    if item == 2:\n        raise StopIteration\n    return item\n"
    replies = run_inline(source, [0, 1, 2, 3, 4])
    assert [r.get("value") for r in replies] == [0, 1, None, 3, 4]
    assert replies[2]["error"]["type"] == "StopIteration"


def test_an_item_that_catches_its_budget_stop_fails_anyway_and_alone() -> None:
    source = (
        "def handle(item):\n    if item:\n        try:\n            while True:\n"
        "                pass\n        except BaseException:\n            return 'escaped'\n"
        "    return 'fine'\n"
    )
    replies = run_inline(source, [0, 1, 0], timeout_s=0.2)
    assert replies[0]["value"] == "fine" and replies[2]["value"] == "fine"
    assert replies[1]["error"]["kind"] == "snippet-budget"
    assert "time budget" in replies[1]["error"]["message"]


def test_results_that_are_not_data_fail_alone() -> None:
    source = (
        "def handle(item):\n"
        "    return [1, 2 ** 70, {1: 'k'}, (x for x in []), [1.5, 'a'], None][item]\n"
    )
    replies = run_inline(source, list(range(6)))
    assert replies[0]["value"] == 1
    assert "64" in replies[1]["error"]["message"]
    assert replies[2]["value"] == {"1": "k"}
    error = replies[3]["error"]
    assert error["type"] == "TypeError" and "generator" in error["message"]
    assert replies[4]["value"] == [1.5, "a"] and replies[5]["value"] is None


def test_a_chunks_values_stay_within_the_room_given() -> None:
    host = Host(SnippetSettings(), io.BytesIO())
    source = "def handle(item):\n    return 'x' * item\n"
    run = make_run(source, [10, 10, 10, 1])
    host.out = io.BytesIO()
    # Room for the nils of four items plus 25 bytes: two 10-character strings (11 bytes each).
    host.handle(msgspec.structs.replace(run, values_bytes_max=4 + 25))
    (part,) = parts_of(frames_of(host.out.getvalue()))
    values = msgspec.msgpack.decode(part.values)
    assert values[:2] == ["x" * 10] * 2 and values[2] is None
    assert dict(part.errors).keys() == {2}
    assert "exceed" in part.infos[0].message
    assert values[3] == "x"


def test_compiled_code_is_cached_across_requests() -> None:
    host = Host(SnippetSettings(), io.BytesIO())
    source = "def handle(item):\n    return item\n"
    first = host_frames(host, source, [1])
    second = host_frames(host, source, [1])
    assert [first[0], second[0]] == [Started(cached=False), Started(cached=True)]


def test_memory_error_asks_for_a_fresh_host() -> None:
    host = Host(SnippetSettings(), io.BytesIO())
    frames = host_frames(host, "def handle(item):\n    raise MemoryError\n", [1])
    (part,) = parts_of(frames)
    assert part.infos[0].kind == "snippet-budget"
    assert frames[-1] == Done(recycle=True)


def test_rejections_end_the_request_at_once() -> None:
    host = Host(SnippetSettings(), io.BytesIO())
    frames = host_frames(host, "def handle(item):\n    return item.__class__\n", [1], mode=Mode.MAP)
    assert len(frames) == 1 and isinstance(frames[0], Rejected)


def test_a_generator_finaliser_runs_inside_the_batch_under_a_budget() -> None:
    source = (
        "def g():\n    try:\n        yield 1\n    finally:\n        while True:\n            pass\n"
        "kept = []\n"
        "def handle(item):\n    x = g()\n    next(x)\n    kept.append(x)\n    return item\n"
    )
    # The suspended generator's endless ``finally`` runs when the run's globals are dropped; the
    # budget stops it and the batch still ends with its results and "done".
    assert run_inline(source, [1, 2], timeout_s=0.2) == [{"i": 0, "value": 1}, {"i": 1, "value": 2}]


def test_a_rejection_of_a_long_line_still_fits_its_frame() -> None:
    source = "def handle(item):\n    return (" + "1 + " * 20_000 + "\n"
    (reply,) = run_inline(source, limits=SnippetSettings(source_bytes_max=200_000))
    assert "rejected" in reply and len(reply["rejected"]) <= 64 * 1024
