"""Compiling a snippet: size cap, RestrictedPython, then the budget's own AST policy, cached.

Rule: source is refused past ``source_bytes_max`` before the parser sees it; RestrictedPython's
``RestrictingNodeTransformer`` runs first and decides what is allowed; only then ``BudgetPolicy``
rewrites the (already restricted) tree so that loops and calls tick the time budget and the
size-heavy operators go through the checked helpers of ``budget``. The helpers' names start with
``_``, which snippet source can never spell, so a snippet cannot shadow or call them itself.
Where the tree itself proves an operation harmless (a ``range`` of constant, small bounds; a
product by a loop variable of such a range, which holds a small int for the whole loop body), the
check is made here, once, instead of at every run.

A snippet's name is the SHA-1 of its UTF-8 source; it is the code's filename, so tracebacks name
it, and the cache key of the compiled code.
"""

from __future__ import annotations

import ast
import functools
from collections import OrderedDict
from types import CodeType
from typing import Any

from RestrictedPython.compile import compile_restricted_exec
from RestrictedPython.transformer import RestrictingNodeTransformer

from ..errors import SnippetRejected
from .names import check_source_size, snippet_filename

# A constant operand this small cannot make ``x * c`` or ``x ** c`` more than a few times larger
# than ``x``, which already fits in memory; the host's memory limit bounds repeated growth. Such
# operations skip the checked helper, which keeps plain arithmetic (``item * 2``) at full speed.
MUL_CONSTANT_FREE = 16
POW_CONSTANT_FREE = 4
SHIFT_CONSTANT_FREE = 64

# Augmented assignments that need no check (see BudgetPolicy.visit_Assign).
NATIVE_INPLACE: dict[str, ast.operator] = {
    "+=": ast.Add(),
    "-=": ast.Sub(),
    "/=": ast.Div(),
    "//=": ast.FloorDiv(),
    ">>=": ast.RShift(),
    "&=": ast.BitAnd(),
    "|=": ast.BitOr(),
    "^=": ast.BitXor(),
}

TICK = "_tick_"
# The budget's tick iterator itself and ``itertools.compress``: ``for x in _compress_(it,
# _ticks_)`` draws one tick per iteration in C.
TICKS = "_ticks_"
COMPRESS = "_compress_"
# The builtin ``range``, for calls whose constant arguments were checked at compile time.
RANGE = "_range_"
MUL = "_mul_"
POW = "_pow_"
LSHIFT = "_lshift_"
MOD = "_mod_"
FORMAT_VALUE = "_format_value_"
INT = "_int_"
INT_LOW = "_int_low_"
INT_HIGH = "_int_high_"
# Calls to these names are the sandbox's own plumbing; they never run snippet code, so a
# function whose only calls are these needs no tick at its entry. ``_apply_`` does run snippet
# code and is not listed.
PLUMBING = frozenset(
    {
        "_getattr_",
        "_getitem_",
        "_getiter_",
        "_write_",
        "_inplacevar_",
        "_unpack_sequence_",
        "_iter_unpack_sequence_",
        "_print_",
        MUL,
        POW,
        LSHIFT,
        MOD,
        FORMAT_VALUE,
        TICK,
        COMPRESS,
        RANGE,
    }
)
# Python's limit for a machine-sized int, the bound below which a known factor is "small".
MACHINE_INT = 2**63
# A range this long is refused by the checked ``range`` unless SnippetSettings lowers it.
RANGE_ITEMS_MAX = 10_000_000


def _call(name: str, *args: ast.expr) -> ast.Call:
    return ast.Call(func=ast.Name(name, ast.Load()), args=list(args), keywords=[])


def _small_constant(node: ast.expr, limit: int) -> bool:
    if not isinstance(node, ast.Constant):
        return False
    value = node.value
    return type(value) in (int, float) and abs(value) <= limit  # type: ignore[arg-type]


def _runs_snippet_code(nodes: list[ast.stmt] | ast.expr) -> bool:
    """Whether evaluating these nodes may call back into snippet code (a call, a comparison)."""
    roots = nodes if isinstance(nodes, list) else [nodes]
    for root in roots:
        for node in ast.walk(root):
            if isinstance(node, ast.Compare):
                return True
            if isinstance(node, ast.Call):
                func = node.func
                if not (isinstance(func, ast.Name) and func.id in PLUMBING):
                    return True
    return False


def _plain_operand(node: ast.expr) -> bool:
    """A name or a literal: evaluating it twice has no effect and gives the same value."""
    return isinstance(node, ast.Name | ast.Constant)


def _int_constant(node: ast.expr) -> int | None:
    """The value of an int literal (``-3`` included), else None."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _int_constant(node.operand)
        return None if inner is None else -inner
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    return None


def _constant_range(call: ast.expr, name: str) -> tuple[int, int] | None:
    """``(length, largest magnitude)`` of ``name(a[, b[, c]])`` with int literal arguments."""
    if not (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Name)
        and call.func.id == name
        and not call.keywords
        and 1 <= len(call.args) <= 3
    ):
        return None
    values = [_int_constant(arg) for arg in call.args]
    if any(v is None for v in values):
        return None
    args = [v for v in values if v is not None]
    try:
        span = range(*args)
        length = len(span)
    except (ValueError, OverflowError):
        return None
    bounds = args[:2] if len(args) > 1 else [0, args[0]]
    return length, max(abs(b) for b in bounds)


def _names_bound(nodes: list[ast.stmt] | ast.AST) -> set[str]:
    """Every name these nodes may bind or delete, nested scopes included (an over-estimate)."""
    found: set[str] = set()
    roots = nodes if isinstance(nodes, list) else [nodes]
    for root in roots:
        for node in ast.walk(root):
            if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
                found.add(node.id)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                found.add(node.name)
            elif isinstance(node, ast.arg):
                found.add(node.arg)
            elif isinstance(node, ast.alias):
                found.add((node.asname or node.name).split(".")[0])
            elif isinstance(node, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and node.name:
                found.add(node.name)
            elif isinstance(node, ast.MatchMapping) and node.rest:
                found.add(node.rest)
            elif isinstance(node, ast.Global | ast.Nonlocal):
                found.update(node.names)
    return found


def _declared(tree: ast.AST) -> set[str]:
    """Names declared ``global`` or ``nonlocal`` anywhere: other scopes may rebind them."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Global | ast.Nonlocal):
            found.update(node.names)
    return found


def _inline_int_product(node: ast.BinOp, checked: ast.Call) -> ast.expr:
    """``a * b`` inline when both are ints and one of them is machine-sized, else the helper.

    Such a product has at most 63 bits more than the larger factor, so it cannot jump in size;
    growth by repeated small factors is linear and is stopped by the time budget, while squaring
    a big number takes the checked route. ``a.__class__ is int`` cannot be faked by snippet code
    (it may not name ``__class__``), and only built-in types can be multiplied into a blow-up.
    This saves a Python call per product in tight loops; floats, sequences and two big ints take
    the checked route.
    """

    def is_int(operand: ast.expr) -> ast.expr:
        return ast.Compare(
            left=ast.Attribute(value=operand, attr="__class__", ctx=ast.Load()),
            ops=[ast.Is()],
            comparators=[ast.Name(INT, ast.Load())],
        )

    def bounded(operand: ast.expr) -> ast.expr:
        return ast.Compare(
            left=ast.Name(INT_LOW, ast.Load()),
            ops=[ast.Lt(), ast.Lt()],
            comparators=[operand, ast.Name(INT_HIGH, ast.Load())],
        )

    left, right = node.left, node.right
    one_small = ast.BoolOp(op=ast.Or(), values=[bounded(left), bounded(right)])
    test = ast.BoolOp(op=ast.And(), values=[is_int(left), is_int(right), one_small])
    return ast.IfExp(
        test=test, body=ast.BinOp(left=left, op=ast.Mult(), right=right), orelse=checked
    )


def _known_int_product(node: ast.BinOp, other: ast.expr, checked: ast.Call) -> ast.expr:
    """``a * b`` where one factor is known to be a machine-sized int: only the other is tested."""
    test = ast.Compare(
        left=ast.Attribute(value=other, attr="__class__", ctx=ast.Load()),
        ops=[ast.Is()],
        comparators=[ast.Name(INT, ast.Load())],
    )
    return ast.IfExp(
        test=test, body=ast.BinOp(left=node.left, op=ast.Mult(), right=node.right), orelse=checked
    )


class BudgetPolicy(ast.NodeTransformer):
    """Adds ticks to loops, comprehensions and calling functions; routes dangerous operators.

    ``known`` holds, while a loop body is visited, the loop variables known to hold an int of at
    most a given magnitude there: the target of ``for NAME in range(<int literals>)`` in a
    function, when nothing in the body can bind NAME (no assignment, ``del``, ``import as``,
    nested loop, ``except as``...; a name declared ``global`` or ``nonlocal`` anywhere is never
    known) and ``range`` is the builtin (the snippet binds that name nowhere). Nested functions,
    lambdas, classes and comprehensions start with nothing known (their own comprehension
    variable aside).
    """

    def __init__(self, range_items_max: int = RANGE_ITEMS_MAX) -> None:
        self.range_items_max = range_items_max
        self.range_is_builtin = True
        self.declared: set[str] = set()
        self.known: dict[str, int] = {}
        self.in_function = False

    def visit_Module(self, node: ast.Module) -> ast.AST:
        self.range_is_builtin = "range" not in _names_bound(node)
        self.declared = _declared(node)
        self.generic_visit(node)
        return node

    def _tick_stmt(self, like: ast.AST) -> ast.stmt:
        return ast.copy_location(ast.Expr(_call(TICK)), like)

    def _scoped(self, node: ast.AST, in_function: bool) -> None:
        """Visit a nested scope's children with nothing known."""
        saved = self.known, self.in_function
        self.known, self.in_function = {}, in_function
        try:
            self.generic_visit(node)
        finally:
            self.known, self.in_function = saved

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        self._scoped(node, in_function=True)
        if _runs_snippet_code(node.body):
            node.body.insert(0, self._tick_stmt(node.body[0]))
        return node

    def visit_Lambda(self, node: ast.Lambda) -> ast.AST:
        self._scoped(node, in_function=False)
        if _runs_snippet_code(node.body):
            node.body = ast.copy_location(
                ast.BoolOp(op=ast.And(), values=[_call(TICK), node.body]), node.body
            )
        return node

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        self._scoped(node, in_function=False)
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        if self.range_is_builtin:
            found = _constant_range(node, "range")
            if found is not None and found[0] <= self.range_items_max:
                # Checked here, once: the builtin itself then runs at full speed.
                node.func = ast.copy_location(ast.Name(RANGE, ast.Load()), node.func)
        return node

    def _range_variable(self, target: ast.expr, iterable: ast.expr) -> tuple[str, int] | None:
        """(name, magnitude) if ``target`` iterates a checked constant range (guarded or not)."""
        if not isinstance(target, ast.Name) or target.id in self.declared:
            return None
        if (
            isinstance(iterable, ast.Call)
            and isinstance(iterable.func, ast.Name)
            and iterable.func.id == "_getiter_"
            and len(iterable.args) == 1
        ):
            iterable = iterable.args[0]
        found = _constant_range(iterable, RANGE)
        return None if found is None else (target.id, found[1])

    def _ticked(self, iterable: ast.expr) -> ast.expr:
        return ast.copy_location(_call(COMPRESS, iterable, ast.Name(TICKS, ast.Load())), iterable)

    def visit_For(self, node: ast.For) -> ast.AST:
        node.iter = self.visit(node.iter)
        node.target = self.visit(node.target)
        variable = self._range_variable(node.target, node.iter) if self.in_function else None
        saved = self.known
        if variable is not None and variable[0] not in _names_bound(node.body):
            self.known = {**saved, variable[0]: variable[1]}
        node.body = self._visit_body(node.body)
        self.known = saved
        node.orelse = self._visit_body(node.orelse)
        # A tick per iteration, drawn in C as the next element is.
        node.iter = self._ticked(node.iter)
        return node

    def _visit_body(self, body: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for stmt in body:
            result = self.visit(stmt)
            if isinstance(result, list):
                out.extend(result)
            elif result is not None:
                out.append(result)
        return out

    def visit_While(self, node: ast.While) -> ast.AST:
        self.generic_visit(node)
        node.body.insert(0, self._tick_stmt(node))
        return node

    def _comprehension(
        self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp
    ) -> ast.AST:
        saved = self.known, self.in_function
        self.known, self.in_function = {}, False
        try:
            for generator in node.generators:
                generator.iter = self.visit(generator.iter)
                generator.target = self.visit(generator.target)
            if len(node.generators) == 1:
                variable = self._range_variable(node.generators[0].target, node.generators[0].iter)
                if variable is not None:
                    # Its own scope: only a nested scope could bind the name, and those start
                    # with nothing known.
                    self.known = {variable[0]: variable[1]}
            for generator in node.generators:
                generator.ifs = [self.visit(test) for test in generator.ifs]
                generator.iter = self._ticked(generator.iter)
            if isinstance(node, ast.DictComp):
                node.key = self.visit(node.key)
                node.value = self.visit(node.value)
            else:
                node.elt = self.visit(node.elt)
        finally:
            self.known, self.in_function = saved
        return node

    visit_ListComp = _comprehension
    visit_SetComp = _comprehension
    visit_GeneratorExp = _comprehension
    visit_DictComp = _comprehension

    def _small(self, node: ast.expr, limit: int) -> bool:
        """A literal, or a known loop variable, of magnitude at most ``limit``."""
        if _small_constant(node, limit):
            return True
        return isinstance(node, ast.Name) and self.known.get(node.id, limit + 1) <= limit

    def _machine_int(self, node: ast.expr) -> bool:
        return isinstance(node, ast.Name) and self.known.get(node.id, MACHINE_INT) < MACHINE_INT

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        op = node.op
        name: str | None = None
        if isinstance(op, ast.Mult):
            free = self._small(node.left, MUL_CONSTANT_FREE) or self._small(
                node.right, MUL_CONSTANT_FREE
            )
            name = None if free else MUL
        elif isinstance(op, ast.Pow):
            name = None if self._small(node.right, POW_CONSTANT_FREE) else POW
        elif isinstance(op, ast.LShift):
            name = None if self._small(node.right, SHIFT_CONSTANT_FREE) else LSHIFT
        elif isinstance(op, ast.Mod):
            left = node.left
            is_text = isinstance(left, ast.JoinedStr) or (
                isinstance(left, ast.Constant) and isinstance(left.value, str | bytes)
            )
            name = MOD if is_text else None
        if name is None:
            return node
        checked = ast.copy_location(_call(name, node.left, node.right), node)
        if name == MUL and _plain_operand(node.left) and _plain_operand(node.right):
            # A product of an int by a machine-sized int grows by at most 63 bits.
            if self._machine_int(node.left):
                return ast.copy_location(_known_int_product(node, node.right, checked), node)
            if self._machine_int(node.right):
                return ast.copy_location(_known_int_product(node, node.left, checked), node)
            return ast.copy_location(_inline_int_product(node, checked), node)
        return checked

    def visit_Assign(self, node: ast.Assign) -> ast.AST:
        """``x = _inplacevar_(op, x, v)`` back to ``x op= v`` for the harmless operators.

        RestrictedPython routes every augmented assignment through ``_inplacevar_`` so that the
        host may guard it; for ``+=``, ``-=``, ``|=``... the guard would be the operator itself,
        so the native statement does the same at a fraction of the cost. ``*=``, ``**=``, ``<<=``
        and ``%=`` keep their checked route.
        """
        self.generic_visit(node)
        value = node.value
        if (
            len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and isinstance(value, ast.Call)
            and isinstance(value.func, ast.Name)
            and value.func.id == "_inplacevar_"
            and len(value.args) == 3
            and isinstance(value.args[0], ast.Constant)
            and value.args[0].value in NATIVE_INPLACE
        ):
            op = NATIVE_INPLACE[value.args[0].value]
            target = ast.Name(node.targets[0].id, ast.Store())
            return ast.copy_location(ast.AugAssign(target=target, op=op, value=value.args[2]), node)
        return node

    def visit_FormattedValue(self, node: ast.FormattedValue) -> ast.AST:
        self.generic_visit(node)
        if node.format_spec is None:
            return node
        spec = node.format_spec
        checked = _call(FORMAT_VALUE, node.value, ast.Constant(node.conversion), spec)
        return ast.copy_location(
            ast.FormattedValue(value=checked, conversion=-1, format_spec=None), node
        )


class SnippetPolicy(RestrictingNodeTransformer):
    """RestrictedPython's policy, followed by ``BudgetPolicy`` on the restricted tree."""

    range_items_max = RANGE_ITEMS_MAX

    def visit_Module(self, node: ast.Module) -> Any:
        super().visit_Module(node)
        if not self.errors:
            # In place: RestrictedPython compiles the tree object it handed to the policy.
            BudgetPolicy(self.range_items_max).visit(node)
            ast.fix_missing_locations(node)
        return node


@functools.cache
def _policy(range_items_max: int) -> type[SnippetPolicy]:
    """The policy class for a range limit (RestrictedPython takes a class, not an instance)."""
    if range_items_max == RANGE_ITEMS_MAX:
        return SnippetPolicy
    return type("SnippetPolicy", (SnippetPolicy,), {"range_items_max": range_items_max})


def compile_snippet(
    source: str, sha1: str, source_bytes_max: int, range_items_max: int = RANGE_ITEMS_MAX
) -> CodeType:
    """Compile (no cache); a rejected snippet raises ``SnippetRejected`` naming the lines."""
    check_source_size(source, source_bytes_max)
    try:
        result = compile_restricted_exec(
            source, filename=snippet_filename(sha1), policy=_policy(range_items_max)
        )
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise SnippetRejected(f"snippet does not compile: {type(exc).__name__}: {exc}") from None
    if result.errors or result.code is None:
        raise SnippetRejected("snippet rejected: " + "; ".join(result.errors[:10]))
    return result.code


class CodeCache:
    """Compiled snippets by SHA-1, least recently used dropped first."""

    def __init__(self, capacity: int, range_items_max: int = RANGE_ITEMS_MAX) -> None:
        self.capacity = capacity
        self.range_items_max = range_items_max
        self._codes: OrderedDict[str, CodeType] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, source: str, sha1: str, source_bytes_max: int) -> CodeType:
        code = self._codes.get(sha1)
        if code is not None:
            self._codes.move_to_end(sha1)
            self.hits += 1
            return code
        self.misses += 1
        code = compile_snippet(source, sha1, source_bytes_max, self.range_items_max)
        self._codes[sha1] = code
        while len(self._codes) > self.capacity:
            self._codes.popitem(last=False)
        return code
