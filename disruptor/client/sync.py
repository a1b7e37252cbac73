"""``Client``: the blocking twin of ``AsyncClient``, running it on a private event loop thread.

Every public coroutine method of ``AsyncClient`` is available here as a plain method with the same
name and arguments; async iterators become plain iterators.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from types import TracebackType
from typing import Any, TypeVar

from .. import event_loop
from .aio import AsyncClient

T = TypeVar("T")


class Client:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._loop = event_loop.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._aio: AsyncClient = self._call(_make(args, kwargs))

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    async def _next(self, aiter: AsyncIterator[T]) -> T:
        return await aiter.__anext__()

    def _iterate(self, aiter: AsyncIterator[T]) -> Iterator[T]:
        while True:
            try:
                yield self._call(self._next(aiter))
            except StopAsyncIteration:
                return

    @property
    def aio(self) -> AsyncClient:
        """The underlying ``AsyncClient`` (its coroutines run on this client's loop only)."""
        return self._aio

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._aio, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            result = attr(*args, **kwargs)
            if asyncio.iscoroutine(result):
                return self._call(result)
            if hasattr(result, "__anext__"):
                return self._iterate(result)
            return result

        call.__name__ = name
        return call

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._call(self._aio.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


async def _make(args: tuple[Any, ...], kwargs: dict[str, Any]) -> AsyncClient:
    return AsyncClient(*args, **kwargs)
