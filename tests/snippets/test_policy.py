"""What snippets may use: the allowed modules work through proxies; the rest is not there."""

from __future__ import annotations

import pytest

from disruptor.snippets.policy import ALLOWED_MODULES, ModuleProxy, RunScope

from .support import error_of, one

USES = {
    "math": ("import math\n", "math.sqrt(item) + math.floor(2.5)", 16, 6.0),
    "statistics": ("import statistics\n", "statistics.mean(item)", [1, 2, 3], 2),
    "json": ("import json\n", "json.loads(json.dumps(item))", {"a": [1]}, {"a": [1]}),
    "datetime": ("import datetime\n", "str(datetime.date(2020, 1, item))", 2, "2020-01-02"),
    "collections": (
        "from collections import Counter\n",
        "Counter(item).most_common(1)",
        "abca",
        [["a", 2]],
    ),
    "functools": (
        "from functools import reduce, partial\n",
        "reduce(lambda a, b: a + b, item, partial(int, '10')())",
        [1, 2],
        13,
    ),
    "itertools": (
        "import itertools\n",
        "list(itertools.islice(itertools.chain(item, item), 3))",
        [1, 2],
        [1, 2, 1],
    ),
    "re": ("import re\n", "re.findall('[0-9]+', item)", "a1b22", ["1", "22"]),
    "string": ("import string\n", "string.capwords(item) + string.digits[:2]", "a b", "A B01"),
    "decimal": ("from decimal import Decimal\n", "str(Decimal(item) / 4)", "1", "0.25"),
    "fractions": ("from fractions import Fraction\n", "str(Fraction(1, item) * 2)", 4, "1/2"),
    "random": ("import random\n", "random.seed(item) or random.randint(1, 1)", 1, 1),
}


def test_every_allowed_module_has_a_use_case() -> None:
    assert set(USES) == set(ALLOWED_MODULES)


@pytest.mark.parametrize("name", sorted(USES))
def test_allowed_module_works(name: str) -> None:
    prelude, expression, item, expected = USES[name]
    source = prelude + f"def handle(item):\n    return {expression}\n"
    assert one(source, item) == {"i": 0, "value": expected}


def test_curated_builtins_work() -> None:
    source = (
        "def handle(item):\n"
        "    pairs = list(zip(item, reversed(item)))\n"
        "    return [sum(item), min(item), max(item), sorted(item, reverse=True), any(item),\n"
        "            all(item), len(item), abs(-2), round(2.567, 1), isinstance(item, list),\n"
        "            list(map(str, item)), list(filter(None, item)), list(enumerate(item))[0],\n"
        "            divmod(7, 2), pow(2, 5), dict(a=1), sorted(set(item)), tuple(item)[0],\n"
        "            int('3'), float('1.5'), bool(0), str(1), pairs[0], frozenset([1]) == {1},\n"
        "            next(iter(item)), hasattr(item, 'append'), getattr(item, 'count')(1)]\n"
    )
    value = one(source, [1, 2, 3])["value"]
    assert value == [
        6,
        1,
        3,
        [3, 2, 1],
        True,
        True,
        3,
        2,
        2.6,
        True,
        ["1", "2", "3"],
        [1, 2, 3],
        [0, 1],
        [3, 1],
        32,
        {"a": 1},
        [1, 2, 3],
        1,
        3,
        1.5,
        False,
        "1",
        [1, 3],
        True,
        1,
        True,
        1,
    ]


def test_classes_and_their_instances_are_writable() -> None:
    source = (
        "class Point:\n    def __init__(self, x):\n        self.x = x\n"
        "    def __lt__(self, other):\n        return self.x < other.x\n"
        "def handle(item):\n    ps = sorted([Point(v) for v in item])\n"
        "    ps[0].y = 1\n    d = {}\n    d['k'] = [p.x for p in ps]\n    return d\n"
    )
    assert one(source, [3, 1, 2])["value"] == {"k": [1, 2, 3]}


@pytest.mark.parametrize("name", ["count", "cycle"])
def test_endless_itertools_are_left_out(name: str) -> None:
    error = error_of(f"import itertools\ndef handle(item):\n    return itertools.{name}\n")
    assert error["type"] == "AttributeError"


def test_random_is_private_to_each_run() -> None:
    seeded = "import random\nrandom.seed(7)\ndef handle(item):\n    return random.random()\n"
    unseeded = "import random\ndef handle(item):\n    return random.random()\n"
    first = one(seeded)["value"]
    assert one(seeded)["value"] == first
    assert one(unseeded)["value"] != first


def test_module_proxy_exposes_only_its_members() -> None:
    proxy = ModuleProxy("m", {"a": 1})
    assert proxy.a == 1
    for name in ("b", "__name__", "__loader__", "__spec__", "__dict__"):
        with pytest.raises(AttributeError):
            getattr(proxy, name)
    with pytest.raises(AttributeError):
        proxy.a = 2


def test_import_refuses_unknown_and_relative_modules() -> None:
    scope = RunScope()
    with pytest.raises(ImportError):
        scope.import_module("os")
    with pytest.raises(ImportError):
        scope.import_module("math", level=1)
    assert scope.import_module("math").sqrt(4) == 2
