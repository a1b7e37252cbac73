from __future__ import annotations

import pytest

from disruptor.client.work import BundleRef, Snippet, snippet_source, work_body

SHA1 = "0123456789abcdef0123456789abcdef01234567"


def square(x):  # type: ignore[no-untyped-def]
    return x * x


def test_work_is_named_by_what_it_is() -> None:
    assert work_body(SHA1) == {"bundle": SHA1}
    assert work_body(BundleRef(SHA1)) == {"bundle": SHA1}
    assert work_body("def handle(x):\n    return x\n") == {
        "snippet": "def handle(x):\n    return x\n"
    }
    assert work_body(Snippet("x")) == {"snippet": "x"}
    with pytest.raises(TypeError):
        work_body(42)  # type: ignore[arg-type]


def test_a_function_travels_as_its_own_source_with_a_handle() -> None:
    source = snippet_source(square)
    namespace: dict[str, object] = {}
    exec(compile(source, "snippet", "exec"), namespace)
    assert namespace["handle"](7) == 49  # type: ignore[operator]
    with pytest.raises(TypeError):
        snippet_source(lambda x: x)
