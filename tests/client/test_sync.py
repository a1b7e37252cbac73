"""The blocking ``Client`` offers every public method of ``AsyncClient``, with the same arguments,
declared (nothing looked up by name at run time, so type checkers see them all)."""

from __future__ import annotations

import inspect

import pytest

from disruptor.client import AsyncClient, Client

# Async-only: they hand back objects of the client's own event loop (responses, sessions).
ASYNC_ONLY = {"request", "request_msgpack", "session"}


def public(cls: type) -> set[str]:
    return {name for name in dir(cls) if not name.startswith("_")}


def test_every_async_method_has_its_blocking_twin_with_the_same_arguments() -> None:
    missing = public(AsyncClient) - ASYNC_ONLY - public(Client)
    assert not missing, f"Client lacks {sorted(missing)}"
    for name in sorted(public(AsyncClient) - ASYNC_ONLY):
        twin = inspect.getattr_static(Client, name)
        if isinstance(twin, property):
            continue
        theirs = inspect.signature(getattr(AsyncClient, name)).parameters
        ours = inspect.signature(getattr(Client, name)).parameters
        assert [(p.name, p.kind, p.default) for p in ours.values()] == [
            (p.name, p.kind, p.default) for p in theirs.values()
        ], name


def test_nothing_is_found_by_name_at_run_time() -> None:
    assert "__getattr__" not in vars(Client)
    with pytest.raises(AttributeError):
        Client.mapp  # type: ignore[attr-defined]  # noqa: B018
