"""Compiling a snippet: size cap, RestrictedPython, then the budget's own AST policy, cached.

Rule: source is refused past ``source_bytes_max`` before the parser sees it; RestrictedPython's
``RestrictingNodeTransformer`` runs first and decides what is allowed; only then ``BudgetPolicy``
rewrites the (already restricted) tree so that loops and calls tick the time budget and the
size-heavy operators go through the checked helpers of ``budget``. The helpers' names start with
``_``, which snippet source can never spell, so a snippet cannot shadow or call them itself.

A snippet's name is the SHA-1 of its UTF-8 source; it is the code's filename, so tracebacks name
it, and the cache key of the compiled code.
"""

from __future__ import annotations

import ast
import hashlib
import re
from collections import OrderedDict
from types import CodeType
from typing import Any

from RestrictedPython.compile import compile_restricted_exec
from RestrictedPython.transformer import RestrictingNodeTransformer

from ..errors import InvalidName, PayloadTooLarge, SnippetRejected

SHA1_PATTERN = re.compile(r"^[0-9a-f]{40}$")

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
    }
)


def snippet_sha1(source: str) -> str:
    return hashlib.sha1(source.encode("utf-8")).hexdigest()  # noqa: S324 - a name, not a MAC


def snippet_filename(sha1: str) -> str:
    return f"<snippet {sha1}>"


def check_sha1(sha1: str) -> str:
    if not SHA1_PATTERN.match(sha1):
        raise InvalidName(f"{sha1[:60]!r} is not a SHA-1 hex name (40 lowercase hex digits)")
    return sha1


def check_source_size(source: str, source_bytes_max: int) -> None:
    if len(source) > source_bytes_max or len(source.encode("utf-8")) > source_bytes_max:
        raise PayloadTooLarge(f"snippet source is larger than {source_bytes_max} bytes")


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


class BudgetPolicy(ast.NodeTransformer):
    """Adds ticks to loops, comprehensions and calling functions; routes dangerous operators."""

    def _tick_stmt(self, like: ast.AST) -> ast.stmt:
        return ast.copy_location(ast.Expr(_call(TICK)), like)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        self.generic_visit(node)
        if _runs_snippet_code(node.body):
            node.body.insert(0, self._tick_stmt(node.body[0]))
        return node

    def visit_Lambda(self, node: ast.Lambda) -> ast.AST:
        self.generic_visit(node)
        if _runs_snippet_code(node.body):
            node.body = ast.copy_location(
                ast.BoolOp(op=ast.And(), values=[_call(TICK), node.body]), node.body
            )
        return node

    def _loop(self, node: ast.For | ast.While) -> ast.AST:
        self.generic_visit(node)
        node.body.insert(0, self._tick_stmt(node))
        return node

    visit_For = _loop
    visit_While = _loop

    def visit_comprehension(self, node: ast.comprehension) -> ast.AST:
        self.generic_visit(node)
        node.ifs.append(ast.copy_location(_call(TICK), node.iter))
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        op = node.op
        name: str | None = None
        if isinstance(op, ast.Mult):
            free = _small_constant(node.left, MUL_CONSTANT_FREE) or _small_constant(
                node.right, MUL_CONSTANT_FREE
            )
            name = None if free else MUL
        elif isinstance(op, ast.Pow):
            name = None if _small_constant(node.right, POW_CONSTANT_FREE) else POW
        elif isinstance(op, ast.LShift):
            name = None if _small_constant(node.right, SHIFT_CONSTANT_FREE) else LSHIFT
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

    def visit_Module(self, node: ast.Module) -> Any:
        super().visit_Module(node)
        if not self.errors:
            # In place: RestrictedPython compiles the tree object it handed to the policy.
            BudgetPolicy().visit(node)
            ast.fix_missing_locations(node)
        return node


def compile_snippet(source: str, sha1: str, source_bytes_max: int) -> CodeType:
    """Compile (no cache); a rejected snippet raises ``SnippetRejected`` naming the lines."""
    check_source_size(source, source_bytes_max)
    try:
        result = compile_restricted_exec(
            source, filename=snippet_filename(sha1), policy=SnippetPolicy
        )
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise SnippetRejected(f"snippet does not compile: {type(exc).__name__}: {exc}") from None
    if result.errors or result.code is None:
        raise SnippetRejected("snippet rejected: " + "; ".join(result.errors[:10]))
    return result.code


class CodeCache:
    """Compiled snippets by SHA-1, least recently used dropped first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
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
        code = compile_snippet(source, sha1, source_bytes_max)
        self._codes[sha1] = code
        while len(self._codes) > self.capacity:
            self._codes.popitem(last=False)
        return code
