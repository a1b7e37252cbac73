"""Results become plain JSON data by exact type only; no method of a snippet's object runs."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from disruptor.snippets.convert import (
    NotPlainData,
    encode_values,
    error_parts,
    exception_message,
    to_plain,
)

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


class TrapList(list[Any]):
    def __iter__(self) -> Any:
        raise AssertionError("__iter__ called")

    def __len__(self) -> int:
        raise AssertionError("__len__ called")

    def __getitem__(self, index: Any) -> Any:
        raise AssertionError("__getitem__ called")


class TrapInt(int):
    def __index__(self) -> int:
        raise AssertionError("__index__ called")

    def __int__(self) -> int:
        raise AssertionError("__int__ called")

    def __repr__(self) -> str:
        raise AssertionError("__repr__ called")


class TrapStr(str):
    def __str__(self) -> str:
        raise AssertionError("__str__ called")

    def encode(self, *args: Any, **kwargs: Any) -> bytes:
        raise AssertionError("encode called")


class TrapAttributes:
    def __getattribute__(self, name: str) -> Any:
        raise AssertionError(f"__getattribute__({name!r}) called")


def test_msgspec_reads_builtin_subclasses_in_c_and_refuses_other_objects() -> None:
    # What the encoder would do if it were handed a snippet's objects: it encodes subclasses of
    # dict and list as their base type, reading them in C without calling their methods, and
    # refuses anything else with TypeError, again without calling anything. Either way no
    # snippet code runs; encode_values still never hands it such values (exact types only).
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(TrapDict(a=1))) == {"a": 1}
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(TrapList([1, 2]))) == [1, 2]
    for value in (TrapInt(3), TrapStr("s"), Trap(), TrapAttributes()):
        with pytest.raises(TypeError):
            msgspec.msgpack.encode(value)


# Made when a test runs (pytest would look at them while collecting otherwise).
NOT_DATA: dict[str, Callable[[], Any]] = {
    "dict-subclass": lambda: TrapDict(a=1),
    "list-subclass": lambda: TrapList([1]),
    "int-subclass": lambda: TrapInt(3),
    "str-subclass": lambda: TrapStr("s"),
    "object": Trap,
    "getattribute": TrapAttributes,
    "in-list": lambda: [TrapInt(1)],
    "in-dict": lambda: {"k": TrapList()},
    "as-key": lambda: {KeyTrap(): 1},
    "in-tuple": lambda: (TrapStr("x"),),
    "set": lambda: {1, 2},
    "bytes": lambda: b"bytes",
}


@pytest.mark.parametrize("name", sorted(NOT_DATA))
def test_encode_values_refuses_what_is_not_exactly_data_without_calling_it(name: str) -> None:
    data, bad = encode_values([1, NOT_DATA[name](), "after"], 10_000)
    assert msgspec.msgpack.decode(data) == [1, None, "after"]
    assert [index for index, _ in bad] == [1]


def test_encode_values_fast_path_gives_the_encoders_own_bytes() -> None:
    plain = [1, -(2**63), 2**64 - 1, 2.5, "text", "", True, None, [1, "a", 2.0], (3, None)]
    plain.append({"k": 1, "n": None})
    data, bad = encode_values(plain, 10_000)
    assert bad == [] and data == msgspec.msgpack.encode(plain)


def test_encode_values_converts_what_needs_a_copy_and_fails_the_rest_alone() -> None:
    values = [{1: "int key"}, [[1, [2]]], 2**64, -(2**63) - 1, math.inf, "x" * 50, 7]
    data, bad = encode_values(values, 40)
    assert msgspec.msgpack.decode(data) == [{"1": "int key"}, [[1, [2]]], None, None, None, None, 7]
    reasons = dict(bad)
    assert "64" in reasons[2] and "64" in reasons[3]
    assert "inf" in reasons[4] and "larger than" in reasons[5]


def test_a_snippets_dict_subclass_is_refused_by_name_without_calling_it() -> None:
    source = (
        "class D(dict):\n    def items(self):\n        return 1 / 0\n"
        "    def keys(self):\n        return 1 / 0\n"
        "    def values(self):\n        return 1 / 0\n"
        "def handle(item):\n    d = D()\n    d['a'] = item\n    return [d, item][item]\n"
    )
    error = error_of(source, 0)
    assert error["type"] == "TypeError" and "D" in error["message"], error
    assert one(source, 1)["value"] == 1
