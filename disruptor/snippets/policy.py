"""What a snippet may use: its limits, its builtins, its modules, and the attribute guard.

Rule: everything a snippet can name is listed here, by allow-list. Builtins are RestrictedPython's
``safe_builtins`` plus a curated set that ordinary code needs, with the size-dangerous ones
(``range``, ``pow``, ``format``) replaced by checked versions from ``budget``. Modules are
reached only through ``ModuleProxy`` objects that expose the listed public members and nothing
else, so a module's ``__loader__``, ``__spec__``, submodules or private helpers cannot be named,
and ``from json import decoder`` cannot fall back to the interpreter's module table.

Each module is on the list for a reason written next to it. Work a module does in C (a regex
backtracking, ``math.factorial`` of a huge number) cannot be interrupted from Python; the host
process's wall-clock watchdog and memory limit stop it (see ``docs/snippets.md``).
"""

from __future__ import annotations

import builtins
import collections
import datetime
import decimal
import fractions
import functools
import itertools
import json
import math
import random
import re
import statistics
import string
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safe_builtins,
)
from RestrictedPython.transformer import INSPECT_ATTRIBUTES

from . import budget as budget_mod
from .settings import SnippetSettings

# Attribute names refused on any object, on top of names starting with "_": the inspection
# attributes that lead to frames, code and globals, and ``mro`` (a way back to ``object``).
DENIED_ATTRIBUTES = frozenset(INSPECT_ATTRIBUTES | {"mro", "f_locals", "tb_frame", "gi_frame"})


def guarded_getattr(obj: Any, name: str, default: Any = budget_mod.MISSING) -> Any:
    """``_getattr_``: RestrictedPython's ``safer_getattr`` rules, stricter, with checked methods.

    str/bytes methods that can build huge results (``join``, ``ljust``, ``replace``,
    ``format``...) come back as checked versions; ``format`` refuses attribute and index access
    in its fields, the route of the published ``str.format`` escapes.
    """
    if type(name) is not str:
        raise TypeError("attribute name must be a str")
    if name.startswith("_") or name in DENIED_ATTRIBUTES:
        raise AttributeError(f'"{name}" is not an attribute a snippet may use')
    if isinstance(obj, type) and issubclass(obj, str | bytes) and name in budget_mod.CHECKED_STR:
        raise NotImplementedError(f"call {name} on a value, not on the type")
    if isinstance(obj, str | bytes) and name in budget_mod.CHECKED_STR:
        return budget_mod.checked_str_method(obj, name)
    if default is budget_mod.MISSING:
        return getattr(obj, name)
    return getattr(obj, name, default)


def guarded_hasattr(obj: Any, name: str) -> bool:
    try:
        guarded_getattr(obj, name)
    except (AttributeError, NotImplementedError):
        return False
    return True


class ModuleProxy:
    """A module as a snippet sees it: the listed members, read-only, and no module identity.

    It has no ``__name__`` on purpose: ``from m import x`` falls back to the interpreter's module
    table by ``__name__`` when ``x`` is missing, and that must fail rather than find a real module.
    """

    __slots__ = ("_members", "_title")

    def __init__(self, title: str, members: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_members", dict(members))
        object.__setattr__(self, "_title", title)

    def __getattr__(self, name: str) -> Any:
        members: dict[str, Any] = object.__getattribute__(self, "_members")
        if name in members:
            return members[name]
        title = object.__getattribute__(self, "_title")
        raise AttributeError(f"module {title!r} offers no {name!r} to snippets")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("modules are read-only in snippets")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("modules are read-only in snippets")

    def __repr__(self) -> str:
        return f"<module {object.__getattribute__(self, '_title')!r}>"


def _public(module: Any, exclude: Iterable[str] = ()) -> dict[str, Any]:
    skip = set(exclude)
    return {n: getattr(module, n) for n in dir(module) if not n.startswith("_") and n not in skip}


def _pick(module: Any, names: Iterable[str]) -> dict[str, Any]:
    return {n: getattr(module, n) for n in names}


def _module_members() -> dict[str, dict[str, Any]]:
    return {
        # Pure arithmetic on numbers. factorial/comb/perm of huge inputs run long in C: the
        # watchdog stops them.
        "math": _public(math),
        # Pure functions over data; no IO.
        "statistics": _pick(
            statistics,
            [
                "NormalDist",
                "StatisticsError",
                "correlation",
                "covariance",
                "fmean",
                "geometric_mean",
                "harmonic_mean",
                "linear_regression",
                "mean",
                "median",
                "median_grouped",
                "median_high",
                "median_low",
                "mode",
                "multimode",
                "pstdev",
                "pvariance",
                "quantiles",
                "stdev",
                "variance",
            ],
        ),
        # Text <-> data only (not the decoder/encoder submodules).
        "json": _pick(json, ("dumps", "loads", "JSONDecodeError")),
        # Value types; reading the clock is harmless.
        "datetime": _pick(
            datetime, ("date", "datetime", "time", "timedelta", "timezone", "MINYEAR", "MAXYEAR")
        ),
        # Containers whose instances a snippet may write to (see WRITABLE_TYPES).
        "collections": _pick(
            collections,
            ("ChainMap", "Counter", "OrderedDict", "defaultdict", "deque", "namedtuple"),
        ),
        # Higher-order helpers that only call what they are given. Not wraps/update_wrapper
        # (they write dunder attributes) nor singledispatch (a registry).
        "functools": _pick(functools, ("cache", "cmp_to_key", "lru_cache", "partial", "reduce")),
        # Lazy, finite iterators. count and cycle are endless by design and repeat without
        # ``times`` too: they are left out, repeat is bounded.
        "itertools": {
            **_pick(
                itertools,
                [
                    "accumulate",
                    "chain",
                    "combinations",
                    "combinations_with_replacement",
                    "compress",
                    "dropwhile",
                    "filterfalse",
                    "groupby",
                    "islice",
                    "pairwise",
                    "permutations",
                    "product",
                    "starmap",
                    "takewhile",
                    "tee",
                    "zip_longest",
                ],
            ),
            "repeat": budget_mod.bounded_repeat,
        },
        # Regular expressions run in C; catastrophic backtracking cannot be interrupted from
        # Python, so the watchdog kills the host (the peer itself never runs a snippet's regex).
        "re": _pick(
            re,
            [
                "compile",
                "escape",
                "findall",
                "finditer",
                "fullmatch",
                "match",
                "search",
                "split",
                "sub",
                "subn",
                "error",
                "A",
                "ASCII",
                "I",
                "IGNORECASE",
                "M",
                "MULTILINE",
                "S",
                "DOTALL",
                "X",
                "VERBOSE",
            ],
        ),
        # Constants and capwords only: not Formatter (its field resolution reaches attributes)
        # nor Template.
        "string": _pick(
            string,
            [
                "ascii_letters",
                "ascii_lowercase",
                "ascii_uppercase",
                "digits",
                "hexdigits",
                "octdigits",
                "punctuation",
                "printable",
                "whitespace",
                "capwords",
            ],
        ),
        # Decimal under the default context (28 digits, bounded exponent). The context objects
        # are left out: a snippet cannot raise the precision to billions of digits.
        "decimal": {
            **_pick(decimal, ("Decimal", "InvalidOperation", "DivisionByZero", "Overflow")),
            **{n: getattr(decimal, n) for n in dir(decimal) if n.startswith("ROUND_")},
        },
        # Exact rationals; ``**`` on them goes through the checked power.
        "fractions": _pick(fractions, ("Fraction",)),
    }


MODULE_MEMBERS: dict[str, dict[str, Any]] = _module_members()
RANDOM_MEMBERS = [
    "random",
    "randint",
    "randrange",
    "choice",
    "choices",
    "shuffle",
    "sample",
    "uniform",
    "gauss",
    "seed",
    "betavariate",
    "expovariate",
    "normalvariate",
    "triangular",
]
ALLOWED_MODULES = frozenset(MODULE_MEMBERS) | {"random"}
_PROXIES = {name: ModuleProxy(name, members) for name, members in MODULE_MEMBERS.items()}

# Types whose instances a snippet may write items or attributes into (plus its own classes).
WRITABLE_TYPES = frozenset(
    {
        dict,
        list,
        bytearray,
        collections.Counter,
        collections.OrderedDict,
        collections.defaultdict,
        collections.deque,
        collections.ChainMap,
    }
)


class RunScope:
    """What one run may touch: the classes it defined (writable) and its own random generator.

    Each run gets a fresh scope, so nothing one snippet does is visible to the next.
    """

    def __init__(self) -> None:
        self.classes: set[type] = set()
        self._random: ModuleProxy | None = None

    def build_class(self, func: Callable[..., Any], name: str, *bases: Any, **kw: Any) -> Any:
        cls = builtins.__build_class__(func, name, *bases, **kw)
        self.classes.add(cls)
        return cls

    def write_guard(self, obj: Any) -> Any:
        kind = type(obj)
        if kind in WRITABLE_TYPES or kind in self.classes or (kind is type and obj in self.classes):
            return obj
        # Anything else (functions, modules, library objects) gets RestrictedPython's wrapper,
        # which refuses every write.
        return full_write_guard(obj)

    def import_module(
        self,
        name: str,
        globals_: Any = None,
        locals_: Any = None,
        fromlist: Any = (),
        level: int = 0,
    ) -> ModuleProxy:
        if level != 0 or name not in ALLOWED_MODULES:
            raise ImportError(
                f"module {name!r} is not available to snippets "
                f"(allowed: {', '.join(sorted(ALLOWED_MODULES))})"
            )
        if name == "random":
            if self._random is None:
                # A private generator per run: one snippet's seed never shapes another's numbers.
                rng = random.Random()  # noqa: S311 - not for secrets
                self._random = ModuleProxy("random", {n: getattr(rng, n) for n in RANDOM_MEMBERS})
            return self._random
        return _PROXIES[name]


# Names from builtins added to RestrictedPython's safe_builtins: what ordinary code needs.
EXTRA_BUILTINS = [
    "all",
    "any",
    "ascii",
    "bin",
    "dict",
    "divmod",
    "enumerate",
    "filter",
    "frozenset",
    "iter",
    "list",
    "map",
    "max",
    "min",
    "next",
    "reversed",
    "set",
    "sorted",
    "sum",
    "tuple",
    "zip",
    "bytes",
    "ArithmeticError",
    "LookupError",
    "StopIteration",
]
# Names of safe_builtins that snippets do not get.
REMOVED_BUILTINS = ("id", "setattr", "delattr")


def make_builtins(scope: RunScope, limits: SnippetSettings) -> dict[str, Any]:
    """A fresh builtins dict for one run (rebinding a name in it affects that run only)."""
    table = {k: v for k, v in safe_builtins.items() if k not in REMOVED_BUILTINS}
    table.update({name: getattr(builtins, name) for name in EXTRA_BUILTINS})
    table.update(
        {
            "__build_class__": scope.build_class,
            "__import__": scope.import_module,
            "_getattr_": guarded_getattr,
            "getattr": guarded_getattr,
            "hasattr": guarded_hasattr,
            "isinstance": isinstance,
            "range": budget_mod.bounded_range,
            "pow": budget_mod.checked_pow,
            "format": budget_mod.checked_format,
        }
    )
    return table


def make_guards(scope: RunScope) -> dict[str, Any]:
    """The RestrictedPython guard names, wired as its documentation intends."""
    return {
        "_getattr_": guarded_getattr,
        "_getitem_": _getitem,
        "_getiter_": iter,
        "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
        "_unpack_sequence_": guarded_unpack_sequence,
        "_write_": scope.write_guard,
        "_apply_": _apply,
        "__metaclass__": type,
    }


def _getitem(obj: Any, key: Any) -> Any:
    return obj[key]


def _apply(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return func(*args, **kwargs)
