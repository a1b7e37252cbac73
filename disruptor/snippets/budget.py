"""The in-process budget of a snippet: a tick counter for time, and checked size-heavy operators.

Rule: every way a few characters of source can ask for unbounded time or memory goes through a
check here before the work starts. The compile step routes loops and calls to ``Budget.tick`` and
``*``, ``**``, ``<<``, ``%``-formatting, f-string specs, ``range``, ``str.join``/``format``... to
the checked helpers below. A stop raises ``BudgetExceeded``, a ``BaseException`` so that
``except Exception`` in a snippet does not swallow it; once a time budget is spent the budget
stays *tripped* and every later tick raises again, so a bare ``except:`` cannot keep a loop alive.

This is the first line, cheap and precise. The second line is outside the process: the host's
address-space limit turns any other huge allocation into a ``MemoryError``, and the peer's
watchdog kills a host whose item overruns its budget inside C code (see ``hosts``).
"""

from __future__ import annotations

import fractions
import re
import time
from collections.abc import Callable, Iterable, Iterator
from itertools import chain, repeat
from operator import length_hint
from typing import Any

from RestrictedPython.PrintCollector import PrintCollector

MISSING: Any = object()
# How many ticks pass between two looks at the clock: a tick is a decrement, the clock a syscall.
TICK_CHECK_INTERVAL = 256

# Set once per host by ``configure`` from the peer's SnippetSettings.
SEQUENCE_ITEMS_MAX = 10_000_000
INT_BITS_MAX = 1_000_000
OUTPUT_BYTES_MAX = 64 * 1024
# A format spec or %-format with a width or precision this many digits long is refused.
FORMAT_DIGITS_MAX = 6


class BudgetExceeded(BaseException):
    """A snippet went past one of its limits (time, size, output)."""


# Two factors strictly between these make a product of at most INT_BITS_MAX bits.
_HIGH = 1 << (INT_BITS_MAX // 2)
_LOW = -_HIGH


def configure(sequence_items_max: int, int_bits_max: int, output_bytes_max: int) -> None:
    global SEQUENCE_ITEMS_MAX, INT_BITS_MAX, OUTPUT_BYTES_MAX, _HIGH, _LOW
    SEQUENCE_ITEMS_MAX = sequence_items_max
    INT_BITS_MAX = int_bits_max
    OUTPUT_BYTES_MAX = output_bytes_max
    _HIGH = 1 << (int_bits_max // 2)
    _LOW = -_HIGH


class Budget:
    """The time budget of the item running now; ``tick`` is what loops and calls invoke.

    ``ticks`` is one C iterator for the host's whole life (``itertools.chain`` over chunks of
    ``repeat(True, TICK_CHECK_INTERVAL)``): a ``for`` loop draws a tick per iteration from it in
    C (``itertools.compress``), and ``tick``, its ``__next__``, is a C call, not a Python frame.
    Python code runs once per chunk to look at the clock. When the deadline has passed, the next
    chunk is an iterator that raises ``BudgetExceeded`` on every call, as long as the same item
    runs, so the budget stays tripped.

    Two ways to give budgets. ``start`` gives the code about to run its budget at once (a
    snippet's top level, a fold). ``follow`` is for a run of items mapped in C over an iterator:
    the budget counts the items taken from the iterator, and the first look at the clock after a
    new item was taken starts that item's budget, so starting an item costs nothing at all. An
    item's budget therefore starts at most ``TICK_CHECK_INTERVAL`` ticks after the item did, and
    an item that trips is recorded in ``trips`` (even if the snippet catches the exception and
    returns: the host fails that item anyway).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.deadline = 0.0
        self.timeout_s = 0.0
        self.tripped: str | None = None
        # Positions (see ``position``) of the items whose budget ran out, in order.
        self.trips: list[int] = []
        self._items: Iterator[Any] | None = None
        self._end = 0
        # Whose deadline ``deadline`` is: (start count, item position); None before the first
        # look at the clock after ``follow``.
        self._starts = 0
        self._owner: tuple[int, int] | None = (0, -1)
        self.ticks: Iterator[bool] = chain.from_iterable(self._chunks())
        self.tick: Callable[[], bool] = self.ticks.__next__

    def position(self) -> int:
        """The item running now: its index in the followed run, or -1 outside one."""
        items = self._items
        if items is None:
            return -1
        return self._end - length_hint(items) - 1

    def owner(self) -> tuple[int, int]:
        return self._starts, self.position()

    def start(self, timeout_s: float) -> None:
        """Give the code about to run its own budget, from now."""
        self._items = None
        self._starts += 1
        self.timeout_s = timeout_s
        self.deadline = self._clock() + timeout_s
        self._owner = (self._starts, -1)
        self.tripped = None

    def follow(self, items: Iterator[Any], end: int, timeout_s: float) -> None:
        """Give each item taken from ``items`` (a list iterator ending at ``end``) a budget."""
        self._items = items
        self._end = end
        self._starts += 1
        self.timeout_s = timeout_s
        self._owner = None
        self.tripped = None

    def _chunks(self) -> Iterator[Iterator[bool]]:
        clock = self._clock
        while True:
            now = clock()
            owner = self.owner()
            if owner != self._owner:
                # A new item (or a new start) since the last look: its budget starts now.
                self._owner = owner
                self.deadline = now + self.timeout_s
                self.tripped = None
            elif now > self.deadline:
                self.tripped = f"ran longer than its time budget of {self.timeout_s:g}s"
                self.trips.append(owner[1])
                yield _Tripped(self, owner, self.tripped)
                continue
            yield repeat(True, TICK_CHECK_INTERVAL)


class _Tripped:
    """The iterator a spent budget ticks on: every step raises again, until another item runs."""

    def __init__(self, budget: Budget, owner: tuple[int, int], reason: str) -> None:
        self.budget = budget
        self.owner = owner
        self.reason = reason

    def __iter__(self) -> _Tripped:
        return self

    def __next__(self) -> bool:
        if self.budget.owner() != self.owner:
            raise StopIteration  # the chain moves on to the next look at the clock
        raise BudgetExceeded(self.reason)


def _too_long(count: int, what: str) -> BudgetExceeded:
    return BudgetExceeded(f"{what} of {count:,} items exceeds the limit of {SEQUENCE_ITEMS_MAX:,}")


def _too_big(bits: int) -> BudgetExceeded:
    return BudgetExceeded(f"integer of about {bits:,} bits exceeds the limit of {INT_BITS_MAX:,}")


def _seq_len(obj: Any) -> int | None:
    kind = type(obj)
    if kind is str or kind is bytes or kind is list or kind is tuple or kind is bytearray:
        return len(obj)
    if isinstance(obj, str | bytes | list | tuple | bytearray):
        return len(obj)
    return None


def checked_mul(a: Any, b: Any) -> Any:
    ta = type(a)
    tb = type(b)
    if ta is int and tb is int:
        # Comparing with a large constant is cheap (sizes first); most products stop here.
        if _LOW < a < _HIGH and _LOW < b < _HIGH:
            return a * b
        if a.bit_length() + b.bit_length() > INT_BITS_MAX:
            raise _too_big(a.bit_length() + b.bit_length())
        return a * b
    if ta is float or tb is float:
        return a * b
    if isinstance(b, int):
        size = _seq_len(a)
        if size is not None and size * b > SEQUENCE_ITEMS_MAX:
            raise _too_long(size * b, "repetition")
    if isinstance(a, int):
        size = _seq_len(b)
        if size is not None and size * a > SEQUENCE_ITEMS_MAX:
            raise _too_long(size * a, "repetition")
    return a * b


def _int_pow_bits(base: int, exp: int) -> int:
    if exp < 0 or base in (0, 1, -1):
        return 0
    return (abs(base).bit_length() - 1) * exp + 1 if abs(base) > 1 else 0


def checked_pow(a: Any, b: Any, mod: Any = None) -> Any:
    if mod is not None:
        # Modular power stays as small as the modulus.
        return pow(a, b, mod)
    if isinstance(b, int) and not isinstance(b, bool):
        if isinstance(a, int):
            bits = _int_pow_bits(a, b)
            if bits > INT_BITS_MAX:
                raise _too_big(bits)
        elif isinstance(a, fractions.Fraction):
            size = max(a.numerator.bit_length(), a.denominator.bit_length())
            if size * abs(b) > INT_BITS_MAX:
                raise _too_big(size * abs(b))
    return a**b


def checked_lshift(a: Any, b: Any) -> Any:
    if isinstance(a, int) and isinstance(b, int) and a and a.bit_length() + b > INT_BITS_MAX:
        raise _too_big(a.bit_length() + b)
    return a << b


_FORMAT_DIGITS = re.compile(r"\d{" + str(FORMAT_DIGITS_MAX + 1) + ",}")


def _check_spec(spec: str) -> None:
    if _FORMAT_DIGITS.search(spec):
        raise BudgetExceeded(f"format width or precision in {spec[:40]!r} is too large")


def checked_mod(a: Any, b: Any) -> Any:
    """``%`` with a string on the left: %-formatting, whose widths can ask for huge strings."""
    if isinstance(a, str | bytes):
        text = a if isinstance(a, str) else a.decode("latin-1")
        _check_spec(text)
        if "*" in text:
            values = b if isinstance(b, tuple) else (b,)
            for value in values:
                if isinstance(value, int) and abs(value) > 10**FORMAT_DIGITS_MAX:
                    raise BudgetExceeded("%-format width or precision is too large")
    return a % b


def checked_format(value: Any, spec: str = "") -> str:
    if type(spec) is not str:
        raise TypeError("format spec must be a str")
    _check_spec(spec)
    return format(value, spec)


def format_value(value: Any, conversion: int, spec: str) -> str:
    """One f-string field: conversion (!s, !r, !a), then a checked format spec."""
    if conversion == ord("s"):
        value = str(value)
    elif conversion == ord("r"):
        value = repr(value)
    elif conversion == ord("a"):
        value = ascii(value)
    return checked_format(value, spec)


def bounded_range(*args: int) -> range:
    span = range(*args)
    if len(span) > SEQUENCE_ITEMS_MAX:
        raise _too_long(len(span), "range")
    return span


def bounded_repeat(obj: Any, times: int = MISSING) -> Iterable[Any]:
    if times is MISSING:
        raise TypeError("itertools.repeat needs 'times' in snippets (endless iterators are out)")
    if times > SEQUENCE_ITEMS_MAX:
        raise _too_long(times, "repeat")
    return repeat(obj, times)


_FIELD = re.compile(r"\{([^{}:!]*)")


def _check_template(template: str) -> None:
    # Field names may be empty, a position or a keyword; ``.attr`` and ``[key]`` are refused
    # because they read attributes and items without the guards.
    for match in _FIELD.finditer(template.replace("{{", "").replace("}}", "")):
        name = match.group(1)
        if "." in name or "[" in name:
            raise NotImplementedError("format fields may not read attributes or items")
    _check_spec(template)


def _joined(sep: Any, parts: Iterable[Any]) -> Any:
    items = list(parts)
    if len(items) > SEQUENCE_ITEMS_MAX:
        raise _too_long(len(items), "join")
    total = len(sep) * max(0, len(items) - 1)
    for item in items:
        if isinstance(item, str | bytes | bytearray):
            total += len(item)
    if total > SEQUENCE_ITEMS_MAX:
        raise _too_long(total, "joined string")
    return sep.join(items)


def _width(text: Any, width: int, name: str) -> None:
    if isinstance(width, int) and width > SEQUENCE_ITEMS_MAX:
        raise _too_long(width, name)


def checked_str_method(obj: Any, name: str) -> Callable[..., Any]:
    """A bound, size-checked stand-in for the str/bytes method ``name``."""
    if name == "join":
        return lambda parts: _joined(obj, parts)
    if name in ("center", "ljust", "rjust"):
        method = getattr(obj, name)

        def padded(width: int, *fill: Any) -> Any:
            _width(obj, width, name)
            return method(width, *fill)

        return padded
    if name == "zfill":

        def zfill(width: int) -> Any:
            _width(obj, width, name)
            return obj.zfill(width)

        return zfill
    if name == "expandtabs":

        def expand(tabsize: int = 8) -> Any:
            _width(obj, obj.count("\t" if isinstance(obj, str) else b"\t") * tabsize, name)
            return obj.expandtabs(tabsize)

        return expand
    if name == "replace":

        def replace(old: Any, new: Any, count: int = -1) -> Any:
            hits = obj.count(old) if old else len(obj) + 1
            if count >= 0:
                hits = min(hits, count)
            _width(obj, len(obj) + hits * max(0, len(new) - len(old)), name)
            return obj.replace(old, new, count)

        return replace
    if name == "format" and isinstance(obj, str):

        def format_(*args: Any, **kwargs: Any) -> str:
            _check_template(obj)
            return obj.format(*args, **kwargs)

        return format_
    if name == "format_map" and isinstance(obj, str):

        def format_map(mapping: Any) -> str:
            _check_template(obj)
            return obj.format_map(mapping)

        return format_map
    return getattr(obj, name)  # type: ignore[no-any-return]


CHECKED_STR = frozenset(
    {"join", "center", "ljust", "rjust", "zfill", "expandtabs", "replace", "format", "format_map"}
)

_INPLACE: dict[str, Callable[[Any, Any], Any]] = {}


def inplacevar(op: str, target: Any, value: Any) -> Any:
    """``_inplacevar_``: ``x op= y`` on a name, with the size-heavy operators checked."""
    return _INPLACE[op](target, value)


def _imul(a: Any, b: Any) -> Any:
    if type(a) is list and isinstance(b, int) and len(a) * b > SEQUENCE_ITEMS_MAX:
        raise _too_long(len(a) * b, "repetition")
    if type(a) is list:
        a *= b
        return a
    return checked_mul(a, b)


def _build_inplace() -> None:
    import operator

    _INPLACE.update(
        {
            "+=": operator.iadd,
            "-=": operator.isub,
            "*=": _imul,
            "/=": operator.itruediv,
            "//=": operator.ifloordiv,
            "%=": lambda a, b: checked_mod(a, b),
            "**=": checked_pow,
            "<<=": checked_lshift,
            ">>=": operator.irshift,
            "&=": operator.iand,
            "|=": operator.ior,
            "^=": operator.ixor,
            "@=": operator.imatmul,
        }
    )


_build_inplace()


class BoundedPrintCollector(PrintCollector):
    """``_print_``: RestrictedPython's collector, refusing output past the run's budget.

    RestrictedPython makes one collector per function call; the count is shared by the whole run
    (``reset_output`` starts a run) so that many calls cannot print without bound either.
    """

    used = 0

    def write(self, text: str) -> None:
        BoundedPrintCollector.used += len(text)
        if BoundedPrintCollector.used > OUTPUT_BYTES_MAX:
            raise BudgetExceeded(f"printed more than {OUTPUT_BYTES_MAX:,} characters")
        super().write(text)


def reset_output() -> None:
    BoundedPrintCollector.used = 0
