"""Turning what a snippet returned or raised into plain data, without running any of its code.

Rule: the host never calls a method of an object a snippet made. Values are classified by their
exact type (``type(x) is int``), never by ``isinstance``/``==``/``hash``/``iter``/``str``, which a
snippet's class could override; anything that is not exactly plain data (None, bool, int, finite
float, str, list, tuple, dict with str/int/bool/None keys) is refused by name: a generator, a
function, an instance of a snippet's class, a subclass of ``dict``... Only values that
passed that check reach the MessagePack encoder: left alone it would encode a ``dict`` or ``list``
subclass, a ``set`` or a named tuple as their base type (reading them in C, without calling their
methods, but against this rule). An exception's message is rebuilt from its ``args`` when they
are plain values, and its traceback lists only the snippet's own frames, with lines from the
snippet's own source.

The common case is cheap: ``encode_values`` looks at the set of exact types in a list of results
(one C-level pass), and when they are all scalars, or lists, tuples and str-keyed dicts of
scalars, encodes the list in one call; only other values go through ``to_plain`` one by one.
"""

from __future__ import annotations

import math
from types import TracebackType
from typing import Any

import msgspec

from ..chunks import array_header
from .budget import BudgetExceeded

_TYPE_NAME = type.__dict__["__name__"]
_EXC_ARGS = BaseException.__dict__["args"]
_EXC_TB = BaseException.__dict__["__traceback__"]
_SCALARS = (str, int, bool, type(None))
NODES_MAX = 1_000_000
# MessagePack's integers: from -2**63 to 2**64 - 1.
_INT_HIGH = 2**63
_INT_LOW = -_INT_HIGH
INT_MSGPACK_HIGH = 2**64
DEPTH_MAX = 100
_encoder = msgspec.msgpack.Encoder()
# Exact types whose values the encoder writes as they are (floats once found finite).
_LEAVES = frozenset({int, str, bool, type(None), float})
_NUMBERS = frozenset({int, bool, type(None), float})
_CONTAINERS = frozenset({list, tuple, dict})
_STR = frozenset({str})
_is_float = float.__instancecheck__
_is_str = str.__instancecheck__
# The most bytes a str of n characters takes in MessagePack: 4 per character and a header.
_STR_BYTES_PER_CHAR = 4
_STR_HEADER_BYTES = 5


class NotPlainData(Exception):
    """A result that is not plain data (it becomes the item's error)."""


def type_name(obj: Any) -> str:
    return str(_TYPE_NAME.__get__(type(obj), type))


def to_plain(value: Any, bytes_max: int) -> tuple[Any, int]:
    """A copy of ``value`` made only of dict/list/str/int/float/bool/None, and its rough size.

    Raises ``NotPlainData`` for anything else. The size counts characters plus a little per
    value; it bounds the work here, the caller checks the exact encoded size.
    """
    kind = type(value)
    # The common case first: one small scalar needs no walk.
    if kind is int and _INT_LOW < value < _INT_HIGH:
        return value, 24
    if kind is str and len(value) < 1024:
        return value, len(value) + 2
    if kind is bool or value is None:
        return value, 8
    budget = [NODES_MAX, bytes_max]

    def walk(obj: Any, depth: int) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise NotPlainData(f"result has more than {NODES_MAX:,} values")
        if depth > DEPTH_MAX:
            raise NotPlainData(f"result is nested deeper than {DEPTH_MAX}")
        kind = type(obj)
        budget[1] -= 8
        if kind is str:
            budget[1] -= len(obj)
        elif kind is int and not _INT_LOW <= obj < INT_MSGPACK_HIGH:
            raise NotPlainData(
                f"result holds an integer of {obj.bit_length()} bits, beyond MessagePack's 64"
            )
        if budget[1] < 0:
            raise NotPlainData(f"result is larger than {bytes_max:,} bytes")
        if kind in _SCALARS:
            return obj
        if kind is float:
            if not math.isfinite(obj):
                raise NotPlainData(f"result holds {obj!r}, which JSON clients cannot receive")
            return obj
        if kind is list or kind is tuple:
            return [walk(x, depth + 1) for x in obj]
        if kind is dict:
            out: dict[str, Any] = {}
            for key, val in dict.items(obj):
                key_kind = type(key)
                if key_kind is str:
                    plain_key = key
                elif key_kind is int or key_kind is bool or key_kind is type(None):
                    plain_key = _json_key(key)
                else:
                    raise NotPlainData(f"result has a dict key of type {type_name(key)}")
                out[plain_key] = walk(val, depth + 1)
            return out
        raise NotPlainData(f"result of type {type_name(obj)} is not plain data")

    plain = walk(value, 0)
    return plain, bytes_max - budget[1]


def _finite(values: Any) -> bool:
    """Whether every float among ``values`` (exact types, already checked) is finite."""
    return all(map(math.isfinite, filter(_is_float, values)))


def _shallow_plain(value: Any) -> bool:
    """A scalar, or a list, tuple or str-keyed dict of scalars: data as it is, no copy needed.

    Only exact types are looked into, and only in C (``map(type, ...)`` over an exact list,
    tuple or dict iterates it without calling anything of the snippet's).
    """
    kind = type(value)
    if kind in _LEAVES:
        return kind is not float or math.isfinite(value)
    if kind is list or kind is tuple:
        kinds = set(map(type, value))
        return kinds <= _LEAVES and (float not in kinds or _finite(value))
    if kind is dict:
        if not set(map(type, value)) <= _STR:
            return False
        inner = dict.values(value)
        kinds = set(map(type, inner))
        return kinds <= _LEAVES and (float not in kinds or _finite(inner))
    return False


def encode_values(values: list[Any], item_bytes_max: int) -> tuple[bytes, list[tuple[int, str]]]:
    """``values`` as one MessagePack array, and (index, reason) for each that is not data.

    Those items are nil in the array. Every item's encoding is at most ``item_bytes_max`` bytes.
    """
    kinds = set(map(type, values))
    if kinds <= _LEAVES:
        fast = float not in kinds or _finite(values)
        if str in kinds:
            longest = max(map(len, filter(_is_str, values)))
            fast = fast and longest * _STR_BYTES_PER_CHAR + _STR_HEADER_BYTES <= item_bytes_max
    else:
        fast = kinds <= _LEAVES | _CONTAINERS and all(map(_shallow_plain, values))
    if fast:
        try:
            data = _encoder.encode(values)
        except OverflowError:  # an integer beyond 64 bits
            pass
        else:
            if kinds <= _LEAVES or len(data) <= item_bytes_max:
                return data, []
    return _encode_each(values, item_bytes_max)


def _encode_each(values: list[Any], item_bytes_max: int) -> tuple[bytes, list[tuple[int, str]]]:
    """The slow path: each value checked, copied if need be, and encoded on its own."""
    parts: list[bytes] = []
    bad: list[tuple[int, str]] = []
    for index, value in enumerate(values):
        try:
            plain = value if _shallow_plain(value) else to_plain(value, item_bytes_max)[0]
            data = _encoder.encode(plain)
        except NotPlainData as exc:
            bad.append((index, exception_message(exc)))
            data = b"\xc0"
        except OverflowError:
            bad.append((index, "result holds an integer beyond MessagePack's 64 bits"))
            data = b"\xc0"
        if len(data) > item_bytes_max:
            bad.append((index, f"result is larger than {item_bytes_max:,} bytes"))
            data = b"\xc0"
        parts.append(data)
    return array_header(len(values)) + b"".join(parts), bad


def _json_key(key: Any) -> str:
    if key is None:
        return "null"
    if key is True or key is False:
        return "true" if key else "false"
    return int.__repr__(key)


def _plain_repr(value: Any) -> str | None:
    """``repr`` of a value whose repr runs no snippet code, else None."""
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return repr(value)
    if kind is tuple and len(value) < 20:
        parts = [_plain_repr(v) for v in value]
        if all(p is not None for p in parts):
            return "(" + ", ".join(p for p in parts if p is not None) + ")"
    return None


def exception_message(exc: BaseException) -> str:
    """What ``str(exc)`` would say for plain arguments, computed without calling ``exc``."""
    args = _EXC_ARGS.__get__(exc)
    if type(args) is not tuple:
        return ""
    if len(args) == 1 and type(args[0]) is str:
        text: str = args[0]
        if isinstance(exc, KeyError):
            text = repr(text)
        return text[:2000]
    if not args:
        return ""
    parts = [_plain_repr(a) for a in args]
    if any(p is None for p in parts):
        return "<message not shown: it is not plain data>"
    shown = [p for p in parts if p is not None]
    return (shown[0] if len(shown) == 1 else "(" + ", ".join(shown) + ")")[:2000]


def snippet_frames(exc: BaseException, filename: str) -> list[tuple[int, str]]:
    """(line, function) of each traceback frame that runs the snippet's own code."""
    frames: list[tuple[int, str]] = []
    tb: TracebackType | None = _EXC_TB.__get__(exc)
    while tb is not None and len(frames) < 1000:
        code = tb.tb_frame.f_code
        if code.co_filename == filename:
            frames.append((tb.tb_lineno, code.co_name))
        tb = tb.tb_next
    return frames


def format_traceback(
    exc: BaseException, filename: str, source: str, kind_name: str, message: str
) -> tuple[int | None, str]:
    """The snippet's last line in the traceback and a traceback text of its frames only."""
    frames = snippet_frames(exc, filename)
    lines = source.splitlines()
    out = ["Traceback (most recent call last):"]
    previous: tuple[int, str] | None = None
    repeats = 0
    for frame in frames[-200:]:
        if frame == previous:
            repeats += 1
            continue
        if repeats:
            out.append(f"  [previous frame repeated {repeats} more times]")
            repeats = 0
        previous = frame
        lineno, func = frame
        out.append(f'  File "{filename}", line {lineno}, in {func}')
        if 0 < lineno <= len(lines):
            out.append("    " + lines[lineno - 1].strip()[:200])
    if repeats:
        out.append(f"  [previous frame repeated {repeats} more times]")
    out.append(f"{kind_name}: {message}" if message else kind_name)
    return (frames[-1][0] if frames else None), "\n".join(out)


def error_parts(
    exc: BaseException, filename: str, source: str, recursion_max: int
) -> tuple[str, str, str, str]:
    """(kind slug, type name, message, traceback) for an exception raised by snippet code."""
    if isinstance(exc, BudgetExceeded):
        kind, name, message = "snippet-budget", "SnippetBudgetExceeded", exception_message(exc)
    elif type(exc) is RecursionError:
        kind, name = "snippet-budget", "RecursionError"
        message = f"recursion deeper than about {recursion_max} calls"
    elif type(exc) is MemoryError:
        kind, name, message = "snippet-budget", "MemoryError", "memory budget exceeded"
    elif isinstance(exc, NotPlainData):
        kind, name, message = "task-failed", "TypeError", exception_message(exc)
    else:
        kind, name, message = "task-failed", type_name(exc), exception_message(exc)
    line, text = format_traceback(exc, filename, source, name, message)
    if line is not None and "line " not in message:
        message = f"{message} (line {line})" if message else f"line {line}"
    return kind, name, message, text
