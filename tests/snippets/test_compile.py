"""Compiling: size cap first, RestrictedPython's verdict, the budget's rewrites, the cache."""

from __future__ import annotations

import ast

import pytest

from disruptor.errors import InvalidName, PayloadTooLarge, SnippetRejected
from disruptor.snippets.compile import BudgetPolicy, CodeCache, compile_snippet
from disruptor.snippets.names import check_sha1, snippet_filename, snippet_sha1


def rewritten(source: str, range_items_max: int = 10_000_000) -> str:
    tree = ast.parse(source)
    BudgetPolicy(range_items_max).visit(tree)
    return ast.unparse(ast.fix_missing_locations(tree))


def test_source_is_refused_by_size_before_parsing() -> None:
    with pytest.raises(PayloadTooLarge):
        compile_snippet("x = 1\n" * 2000, "0" * 40, source_bytes_max=1000)


def test_syntax_errors_are_rejected_with_their_line() -> None:
    with pytest.raises(SnippetRejected, match="Line 2"):
        compile_snippet("x = 1\ndef handle(:\n", "0" * 40, 10_000)


def test_pathological_nesting_is_rejected_not_crashing() -> None:
    with pytest.raises(SnippetRejected):
        compile_snippet("x = " + "(" * 5000 + ")" * 5000, "0" * 40, 100_000)


def test_filename_is_the_sha1() -> None:
    sha1 = snippet_sha1("def handle(item):\n    return item\n")
    code = compile_snippet("def handle(item):\n    return item\n", sha1, 10_000)
    assert code.co_filename == snippet_filename(sha1) == f"<snippet {sha1}>"


def test_loops_and_comprehensions_tick() -> None:
    text = rewritten("for i in x:\n    pass\nwhile y:\n    pass\nz = [a for a in b]\n")
    # for loops and comprehensions draw a tick per element in C; a while loop calls the tick.
    assert "for i in _compress_(x, _ticks_)" in text
    assert "for a in _compress_(b, _ticks_)" in text
    assert text.count("_tick_()") == 1 and "while y:\n    _tick_()" in text


def test_functions_tick_only_when_they_can_call_back_into_snippet_code() -> None:
    assert "_tick_" not in rewritten("def f(x):\n    return x * 2 + 1\n")
    assert "_tick_" in rewritten("def f(x):\n    return f(x)\n")
    assert "_tick_" in rewritten("def f(x):\n    return x == 1\n")
    assert "_tick_" in rewritten("g = lambda x: g(x)\n")


def test_dangerous_operators_are_routed_small_constants_are_not() -> None:
    text = rewritten(
        "a = x * y\nb = x * 2\nc = x ** y\nd = x ** 2\ne = x << y\nf = '%d' % x\n"
        "g = x % 3\nh = f'{x:>{n}}'\n"
    )
    assert "_mul_(x, y)" in text and "x * 2" in text
    assert "_pow_(x, y)" in text and "x ** 2" in text
    assert "_lshift_(x, y)" in text
    assert "_mod_('%d', x)" in text and "x % 3" in text
    assert "_format_value_(x, -1" in text
    # Two names: ints of machine size multiply inline, anything else goes to the helper.
    assert "x * y if x.__class__ is _int_ and y.__class__ is _int_" in text
    # A large constant is not "small": [0] * 10**10 and 'x' * 100000 are checked.
    assert "_mul_" in rewritten("a = [0] * 100000\n")


def test_cache_hits_by_sha1_and_evicts_least_recently_used() -> None:
    cache = CodeCache(capacity=2)
    sources = [f"def handle(item):\n    return {n}\n" for n in range(3)]
    names = [snippet_sha1(s) for s in sources]
    first = cache.get(sources[0], names[0], 10_000)
    assert cache.get(sources[0], names[0], 10_000) is first
    assert (cache.hits, cache.misses) == (1, 1)
    cache.get(sources[1], names[1], 10_000)
    cache.get(sources[2], names[2], 10_000)
    assert cache.get(sources[0], names[0], 10_000) is not first
    assert cache.misses == 4


def test_sha1_names_are_checked() -> None:
    assert check_sha1("a" * 40) == "a" * 40
    for bad in ("A" * 40, "a" * 39, "../" + "a" * 37, ""):
        with pytest.raises(InvalidName):
            check_sha1(bad)


def test_constant_ranges_are_checked_once_at_compile_time() -> None:
    assert "_range_(10)" in rewritten("for i in range(10):\n    pass\n")
    assert "_range_(-5, 5, 2)" in rewritten("x = range(-5, 5, 2)\n")
    # Not constant, too long for the limit, or not the builtin: checked when it runs.
    assert "range(n)" in rewritten("x = range(n)\n") and "_range_" not in rewritten(
        "x = range(n)\n"
    )
    assert "_range_" not in rewritten("x = range(100000000)\n")
    assert "_range_" not in rewritten("range = list\nx = range(10)\n")
    assert "_range_" not in rewritten("def f(range):\n    return range(10)\n")
    assert "_range_(10)" in rewritten("x = range(10)\n", range_items_max=10)
    assert "_range_" not in rewritten("x = range(11)\n", range_items_max=10)


def body_of(text: str) -> str:
    return rewritten("def f(x, t):\n" + "".join(f"    {line}\n" for line in text.splitlines()))


def test_products_by_a_loop_variable_of_a_small_constant_range_run_native() -> None:
    text = body_of("for i in range(10):\n    t += i * x\n    t += x * i")
    assert text.endswith("        t += i * x\n        t += x * i")
    comprehension = rewritten("y = [k * x for k in range(16)]\n")
    assert "[k * x for k in" in comprehension


def test_a_machine_sized_loop_variable_leaves_only_the_other_factor_to_test() -> None:
    text = body_of("for i in range(1000):\n    t += i * x")
    assert "i * x if x.__class__ is _int_ else _mul_(i, x)" in text


@pytest.mark.parametrize(
    "code",
    [
        "for i in range(10):\n    i = y\n    t += i * x",  # rebound in the body
        "for i in range(10):\n    for i in y:\n        t += i * x",  # a nested loop rebinds it
        "for i in range(10):\n    del i\n    t += i * x",
        "for i in range(10):\n    (i := y)\n    t += i * x",
        "for i in range(10):\n    try:\n        pass\n    except E as i:\n        pass\n"
        "    t += i * x",
        "global i\nfor i in range(10):\n    t += i * x",  # other scopes may rebind it
        "for i in range(n):\n    t += i * x",  # a range whose bounds are not known
        "for i in y:\n    t += i * x",
    ],
)
def test_loop_variables_that_may_change_are_not_trusted(code: str) -> None:
    text = body_of(code)
    assert "_mul_(i, x)" in text and "i.__class__ is _int_" in text, text


def test_nested_scopes_start_with_nothing_known() -> None:
    text = body_of("for i in range(10):\n    g = lambda x: i * x\n    t += [i * z for z in x]")
    assert "lambda x: _tick_() and (i * x if i.__class__ is _int_" in text
    assert "[i * z if i.__class__ is _int_" in text
