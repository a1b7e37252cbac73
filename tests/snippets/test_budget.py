"""Every runaway a few characters can ask for is stopped with a clear error, before the work."""

from __future__ import annotations

import time
from fractions import Fraction

import pytest

from disruptor.snippets import budget
from disruptor.snippets.budget import Budget, BudgetExceeded

from .support import error_of, run_inline


def handle(code: str) -> str:
    return "def handle(item):\n    " + code.replace("\n", "\n    ") + "\n"


RUNAWAYS = {
    "endless-loop": (handle("while True:\n    pass"), "time budget"),
    "endless-loop-caught": (
        handle(
            "while True:\n    try:\n        while True:\n            pass\n"
            "    except:\n        pass"
        ),
        "time budget",
    ),
    "endless-comprehension": (
        handle("return [x for x in range(10**7) for y in range(10**7)]"),
        "time budget",
    ),
    "exponential-recursion": (
        "def f(n):\n    return 1 if n == 0 else f(n - 1) + f(n - 1)\n" + handle("return f(60)"),
        "time budget",
    ),
    "deep-recursion": ("def f(n):\n    return f(n + 1)\n" + handle("return f(0)"), "recursion"),
    "string-repeat": (handle("return 'x' * 10**10"), "repetition"),
    "list-repeat": (handle("return [0] * 10**10"), "repetition"),
    "repeat-by-names": (handle("n = 10**10\ns = 'x'\nreturn s * n"), "repetition"),
    "big-times-big-by-names": (handle("a = 7 ** 200000\nb = a\nreturn a * b * b"), "integer"),
    "list-repeat-inplace": (handle("x = [0]\nx *= 10**10\nreturn x"), "repetition"),
    "power-tower": (handle("return 10 ** 10 ** 10"), "integer"),
    "power-builtin": (handle("return pow(10, 10**10)"), "integer"),
    "power-inplace": (handle("x = 10\nx **= 10**10\nreturn x"), "integer"),
    "shift": (handle("return 1 << 10**10"), "integer"),
    "squaring-loop": (handle("x = 3\nwhile True:\n    x = x * x"), "integer"),
    "fraction-power": (
        "from fractions import Fraction\n" + handle("return Fraction(3, 2) ** 10**9"),
        "integer",
    ),
    "huge-range": (handle("return list(range(10**10))"), "range"),
    "huge-range-sum": (handle("return sum(range(10**12))"), "range"),
    "huge-join": (handle("return ','.join(['x' * 10**6] * 100)"), "joined string"),
    "huge-ljust": (handle("return 'x'.ljust(10**10)"), "ljust"),
    "huge-replace": (
        handle("return ('x' * 10**6).replace('x', 'yyyyyyyyyyyyyyyyyyyy')"),
        "replace",
    ),
    "huge-format-width": (handle("return format(1, '>10000000000')"), "format width"),
    "huge-fstring-width": (handle("return f'{item:>{10**10}}'"), "format width"),
    "huge-str-format-width": (handle("return '{:>10000000000}'.format(1)"), "format width"),
    "huge-percent-width": (handle("return '%10000000000d' % 1"), "format width"),
    "huge-percent-star": (handle("return '%*d' % (10**10, 1)"), "width"),
    "runaway-output": (handle("while True:\n    print('x' * 100)"), "printed more than"),
    "runaway-output-many-calls": (
        "def p():\n    print('x' * 1000)\n" + handle("while True:\n    p()"),
        "printed more than",
    ),
    "endless-repeat": ("import itertools\n" + handle("return list(itertools.repeat(1))"), "times"),
    "top-level-loop": ("while True:\n    pass\n" + handle("return 1"), "time budget"),
}


@pytest.mark.parametrize("name", sorted(RUNAWAYS))
def test_runaway_is_stopped_with_a_clear_error(name: str) -> None:
    source, words = RUNAWAYS[name]
    started = time.monotonic()
    error = error_of(source, 1, timeout_s=0.3)
    assert words in error["message"], error
    assert error["kind"] in ("snippet-budget", "task-failed")
    if words not in ("times",):
        assert error["kind"] == "snippet-budget", error
    # It names the snippet's own line.
    assert "(line " in error["message"]
    # A bound far above the budget only to catch a stop that never came (not a speed check).
    assert time.monotonic() - started < 60


def test_a_tripped_budget_cannot_be_caught_away() -> None:
    source = handle(
        "n = 0\nwhile True:\n    try:\n        while True:\n            n += 1\n"
        "    except BaseException:\n        n += 1"
    )
    assert error_of(source, timeout_s=0.2)["kind"] == "snippet-budget"


def test_the_next_item_gets_a_fresh_budget() -> None:
    source = handle("if item:\n    while True:\n        pass\nreturn 'ok'")
    replies = run_inline(source, [1, 0], timeout_s=0.2)
    assert replies[0]["error"]["kind"] == "snippet-budget"
    assert replies[1] == {"i": 1, "value": "ok"}


def test_ordinary_sizes_pass() -> None:
    source = handle(
        "return [len('x' * 1000), len([0] * item), (2 ** 100).bit_length(),"
        " (1 << 200).bit_length(), len(range(10**6)), '%5d' % 3, f'{item:>8}',"
        " '-'.join(['a', 'b']), 'ab'.ljust(4, '.')]"
    )
    value = run_inline(source, [1000])[0]["value"]
    assert value == [1000, 1000, 101, 201, 10**6, "    3", "    1000", "a-b", "ab.."]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_budget_trips_after_its_deadline_and_stays_tripped() -> None:
    clock = FakeClock()
    spent = Budget(clock)
    spent.start(1.0)
    for _ in range(10 * budget.TICK_CHECK_INTERVAL):
        assert spent.tick()
    clock.now = 1.5
    with pytest.raises(BudgetExceeded, match="time budget of 1s"):
        for _ in range(budget.TICK_CHECK_INTERVAL):
            spent.tick()
    # Tripped: the very next tick raises again.
    with pytest.raises(BudgetExceeded):
        spent.tick()
    spent.start(1.0)
    assert spent.tripped is None


def test_checked_operators_leave_ordinary_values_alone() -> None:
    assert budget.checked_mul(3, 4) == 12
    assert budget.checked_mul("ab", 3) == "ababab"
    assert budget.checked_mul(2.5, 2) == 5.0
    assert budget.checked_pow(2, 10) == 1024
    assert budget.checked_pow(2, -1) == 0.5
    assert budget.checked_pow(3, 10**9, 7) == pow(3, 10**9, 7)
    assert budget.checked_pow(Fraction(1, 2), 3) == Fraction(1, 8)
    assert budget.checked_lshift(1, 10) == 1024
    assert budget.checked_mod(7, 3) == 1
    assert budget.format_value(3.14159, ord("r"), ".2") == "3."
    assert list(budget.bounded_repeat("a", 2)) == ["a", "a"]
    assert budget.inplacevar("+=", [1], [2]) == [1, 2]


def test_followed_items_each_get_their_own_budget_from_their_first_look() -> None:
    clock = FakeClock()
    spent = Budget(clock)
    items = iter([10, 20, 30])
    spent.follow(items, 3, 1.0)
    interval = budget.TICK_CHECK_INTERVAL
    next(items)  # item 0 runs
    for _ in range(interval + 44):
        assert spent.tick()
    clock.now = 0.5
    next(items)  # item 1 runs; past item 0's deadline, but its budget starts at its first look
    clock.now = 1.2
    for _ in range(interval + 44):
        assert spent.tick()
    clock.now = 2.5
    with pytest.raises(BudgetExceeded, match="time budget of 1s"):
        for _ in range(interval):
            spent.tick()
    with pytest.raises(BudgetExceeded):
        spent.tick()  # tripped for as long as item 1 runs
    assert spent.trips == [1]
    next(items)  # item 2: a fresh budget, without a call to start
    for _ in range(2 * interval):
        assert spent.tick()
    assert spent.trips == [1] and spent.tripped is None


def test_start_after_a_trip_gives_a_fresh_budget_on_the_same_ticker() -> None:
    clock = FakeClock()
    spent = Budget(clock)
    ticks = spent.ticks
    spent.start(1.0)
    clock.now = 2.0
    with pytest.raises(BudgetExceeded):
        for _ in range(budget.TICK_CHECK_INTERVAL + 1):
            spent.tick()
    spent.start(1.0)
    assert all(spent.tick() for _ in range(3 * budget.TICK_CHECK_INTERVAL))
    # One ticker for the host's life: compiled loops hold it across items.
    assert spent.ticks is ticks


def test_a_loop_variable_of_a_large_constant_range_is_still_checked_against_sequences() -> None:
    source = handle("x = [0] * 1000\nfor i in range(10000000, 10000001):\n    return i * x")
    assert "repetition" in error_of(source)["message"]
