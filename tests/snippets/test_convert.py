"""Results become plain JSON data by exact type only; no method of a snippet's object runs."""

from __future__ import annotations

import math
from typing import Any

import pytest

from disruptor.snippets.convert import NotPlainData, error_parts, exception_message, to_plain

from .support import error_of, one


class Trap:
    """Every special method raises: converting must never call one."""

    def __eq__(self, other: object) -> bool:
        raise AssertionError("__eq__ called")

    def __hash__(self) -> int:
        raise AssertionError("__hash__ called")

    def __iter__(self) -> Any:
        raise AssertionError("__iter__ called")

    def __str__(self) -> str:
        raise AssertionError("__str__ called")

    __repr__ = __str__


class KeyTrap(Trap):
    """Hashable (so it can be a dict key), every other special method still raises."""

    __hash__ = object.__hash__


class TrapDict(dict[str, Any]):
    def items(self) -> Any:
        raise AssertionError("items called")


def test_plain_values_round_trip() -> None:
    value = {"a": [1, 2.5, "x", None, True], "b": (1, 2), 3: {"c": []}}
    assert to_plain(value, 10_000)[0] == {
        "a": [1, 2.5, "x", None, True],
        "b": [1, 2],
        "3": {"c": []},
    }


@pytest.mark.parametrize(
    "value",
    [
        Trap(),
        [Trap()],
        {"k": Trap()},
        {KeyTrap(): 1},
        TrapDict(a=1),
        (x for x in []),
        len,
        math.nan,
    ],
)
def test_other_values_are_refused_without_calling_them(value: Any) -> None:
    with pytest.raises(NotPlainData):
        to_plain(value, 10_000)


def test_size_depth_and_big_ints_are_bounded() -> None:
    with pytest.raises(NotPlainData, match="larger than"):
        to_plain(["x" * 600] * 2, 1000)
    nested: list[Any] = []
    for _ in range(200):
        nested = [nested]
    with pytest.raises(NotPlainData, match="deeper"):
        to_plain(nested, 10_000)
    with pytest.raises(NotPlainData, match="integer"):
        to_plain(10**5000, 10**6)


def test_exception_message_never_calls_snippet_objects() -> None:
    assert exception_message(ValueError("plain")) == "plain"
    assert exception_message(KeyError("k")) == "'k'"
    assert exception_message(ValueError(1, "two")) == "(1, 'two')"
    assert "not plain data" in exception_message(ValueError(Trap()))


def test_error_parts_name_only_snippet_frames() -> None:
    source = "def handle(item):\n    return 1 / item\n"
    code = compile(source, "<snippet x>", "exec")
    table: dict[str, Any] = {}
    exec(code, table)
    try:
        table["handle"](0)
    except ZeroDivisionError as exc:
        kind, name, message, text = error_parts(exc, "<snippet x>", source, 500)
    assert (kind, name) == ("task-failed", "ZeroDivisionError")
    assert message == "division by zero (line 2)"
    assert "return 1 / item" in text and "test_convert" not in text


def test_snippet_results_that_are_not_data_fail_by_name() -> None:
    source = (
        "class A:\n    def __eq__(self, other):\n        return 1 / 0\n"
        "def g():\n    yield 1\n"
        "def handle(item):\n    return [A(), g(), handle, {(1, 2): 1}][item]\n"
    )
    for index, name in enumerate(["A", "generator", "function", "tuple"]):
        error = error_of(source, index)
        assert error["type"] == "TypeError" and name in error["message"], error


def test_snippet_exception_classes_report_plainly() -> None:
    source = (
        "class Oops(Exception):\n    pass\ndef handle(item):\n    raise Oops('bad item', item)\n"
    )
    error = one(source, 3)["error"]
    assert error == {
        "kind": "task-failed",
        "type": "Oops",
        "message": "('bad item', 3) (line 4)",
        "traceback": error["traceback"],
    }
