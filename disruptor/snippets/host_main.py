"""The snippet host: a small process that compiles and runs snippets for its peer.

Run by ``host_pool.HostPool`` as ``python -I`` with an empty environment, no inherited
descriptors but its three pipes, ``/`` as working directory, and these limits set on itself before
it reads any request: address space (``memory_mb``), no file writes, a handful of descriptors, no
new processes, no core dumps. It holds no secret and opens no file.

It speaks the binary wire of ``host_wire``: ``Ready`` once, then for each ``Run`` either
``Rejected``/``BadItems``, or ``Started``, one or more ``Part``, ``Done``.

Rule: one request at a time; every value sent is plain data checked by exact type
(``convert``: no object a snippet made is ever serialised directly); after a ``MemoryError``
the host answers ``recycle`` and exits, so the next run gets a fresh interpreter.

The map loop is where a million items go, so it does nothing per item in Python:
``values.extend(map(handle, islice(items, n)))`` runs the items in C; the budget starts each
item's time on its first look at the clock (``Budget.follow``); an exception ends the slice,
records the item's error, and the loop carries on with the next item. Slices grow while they
run fast and shrink when they run slow, and a part goes out every ``PART_INTERVAL_S``, so the
peer and its watchdog see progress on long chunks.
"""

from __future__ import annotations

import collections
import itertools
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from operator import length_hint
from typing import IO, Any

import msgspec

from ..errors import SnippetRejected
from . import budget as budget_mod
from .compile import CodeCache
from .convert import error_parts
from .host_parts import PartBuffer, PartWriter, error_wire, failed_part
from .host_wire import (
    DETAIL_CHARS_MAX,
    ERROR_TEXT_MAX,
    PART_ERRORS_BYTES,
    PART_INTERVAL_S,
    BadItems,
    Done,
    ErrorWire,
    Mode,
    Ready,
    Rejected,
    Run,
    Started,
    WireError,
    encode_frame,
    read_frame,
)
from .names import snippet_filename
from .policy import RunScope, make_builtins, make_guards
from .settings import SnippetSettings

# Items run in slices between two looks at the clock: the first slice is small, slices double
# while they take less than SLICE_FAST_S and shrink while they take more than SLICE_SLOW_S.
SLICE_ITEMS_START = 16
SLICE_ITEMS_MAX = 4096
SLICE_FAST_S = 0.002
SLICE_SLOW_S = 0.02
# Bound of the factors the inlined product accepts (see compile._inline_int_product).
MACHINE_INT = 2**63
ENTRY_POINTS = {Mode.MAP: "handle", Mode.REDUCE: "reduce", Mode.COMBINE: "combine"}
_items_decoder = msgspec.msgpack.Decoder()


def apply_limits(limits: SnippetSettings) -> None:
    """Fence this process before it runs anything a peer sent it."""
    memory = limits.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (8, 8))
    if os.geteuid() != 0:
        # Root ignores RLIMIT_NPROC; for everyone else it forbids fork and spawn.
        resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    sys.setrecursionlimit(limits.recursion_depth_max + 60)
    budget_mod.configure(limits.sequence_items_max, limits.int_bits_max, limits.output_bytes_max)


class Host:
    def __init__(self, limits: SnippetSettings, out: IO[bytes]) -> None:
        self.limits = limits
        self.out = out
        self.cache = CodeCache(limits.compile_cache_max, limits.sequence_items_max)
        self.budget = budget_mod.Budget()
        self.recycle = False

    def emit(self, message: msgspec.Struct) -> None:
        self.out.write(encode_frame(message))
        self.out.flush()

    def globals_for(self, scope: RunScope) -> dict[str, Any]:
        """Fresh globals for one run: nothing a previous run bound is visible."""
        table: dict[str, Any] = {
            "__builtins__": make_builtins(scope, self.limits),
            "__name__": "snippet",
            **make_guards(scope),
            "_print_": budget_mod.BoundedPrintCollector,
            "_inplacevar_": budget_mod.inplacevar,
            "_tick_": self.budget.tick,
            "_ticks_": self.budget.ticks,
            "_compress_": itertools.compress,
            "_range_": range,
            "_mul_": budget_mod.checked_mul,
            "_int_": int,
            "_int_low_": -MACHINE_INT,
            "_int_high_": MACHINE_INT,
            "_pow_": budget_mod.checked_pow,
            "_lshift_": budget_mod.checked_lshift,
            "_mod_": budget_mod.checked_mod,
            "_format_value_": budget_mod.format_value,
        }
        return table

    def handle(self, run: Run) -> None:
        source = run.source
        filename = snippet_filename(run.sha1)
        hits = self.cache.hits
        try:
            code = self.cache.get(source, run.sha1, self.limits.source_bytes_max)
        except SnippetRejected as exc:
            self.emit(Rejected(exc.detail[:DETAIL_CHARS_MAX]))
            return
        if run.mode is Mode.CHECK:
            self.emit(Started(self.cache.hits > hits))
            self.emit(Done(False))
            return
        try:
            items = _items_decoder.decode(run.items)
            initial = _items_decoder.decode(run.initial) if run.has_initial else None
        except (msgspec.DecodeError, RecursionError) as exc:
            self.emit(BadItems(f"the items are not valid MessagePack: {exc}"[:ERROR_TEXT_MAX]))
            return
        if type(items) is not list or len(items) != run.count or run.first > run.count:
            self.emit(BadItems(f"the items are not an array of {run.count} values"))
            return
        scope = RunScope()
        table = self.globals_for(scope)
        budget_mod.reset_output()
        self.budget.start(run.timeout_s)
        top_error: BaseException | None = None
        try:
            exec(code, table)  # noqa: S102 - restricted code, restricted globals
            if self.budget.tripped:
                raise budget_mod.BudgetExceeded(self.budget.tripped)
        except BaseException as exc:
            top_error = exc
        mode = run.mode
        entry = ENTRY_POINTS.get(mode, "handle")
        if mode is Mode.FOLD:
            # The coordinator's fold: reduce(results) if the snippet has it, else combine.
            entry = "reduce" if "reduce" in table else "combine"
            mode = Mode.REDUCE if entry == "reduce" else Mode.COMBINE
        func = table.get(entry)
        if top_error is None and func is None:
            self.emit(Rejected(f"the snippet defines no {entry}() function"))
            return
        self.emit(Started(self.cache.hits > hits))
        units = run.count if mode is Mode.MAP else 1
        writer = PartWriter(
            self.emit,
            units,
            run.first,
            run.values_bytes_max,
            self.limits.result_bytes_max,
            run.timeout_s,
        )
        if top_error is not None:
            if units > run.first:
                info = self._error(top_error, filename, source)
                self.emit(failed_part(run.first, units - run.first, info))
        elif mode is Mode.MAP:
            self._map(func, items, run, writer, filename)
        else:
            self._once(mode, func, items, initial, run, writer, filename)
        del items, initial, func
        self._release(table, run.timeout_s)
        self.emit(Done(self.recycle))

    def _map(
        self, func: Any, items: list[Any], run: Run, writer: PartWriter, filename: str
    ) -> None:
        """``func(item)`` for the items from ``run.first`` on, in C, in slices, sent in parts."""
        count = len(items)
        budget = self.budget
        it = iter(items)
        if run.first:
            collections.deque(itertools.islice(it, run.first), maxlen=0)
        budget.trips.clear()
        budget.follow(it, count, run.timeout_s)
        flush_each = run.flush_each
        size = 1 if flush_each else SLICE_ITEMS_START
        clock = time.monotonic
        islice = itertools.islice
        buffer = PartBuffer(run.first)
        stopped = error_wire("task-failed", "StopIteration", "handle() raised StopIteration")
        sent_at = clock()
        done = run.first
        while done < count:
            began = clock()
            values = buffer.values
            try:
                values.extend(map(func, islice(it, size)))
            except BaseException as exc:
                buffer.fail(self._error(exc, filename, run.source))
            else:
                taken = count - length_hint(it)
                if buffer.end < taken:
                    # map() took a StopIteration raised by the snippet for the end of the
                    # slice: that item failed with it (its traceback is lost with it).
                    buffer.fail(stopped)
            done = buffer.end
            now = clock()
            if not flush_each:
                took = now - began
                if took < SLICE_FAST_S:
                    size = min(size * 2, SLICE_ITEMS_MAX)
                elif took > SLICE_SLOW_S:
                    size = max(1, size // 4)
            if (
                flush_each
                or done >= count
                or now - sent_at >= PART_INTERVAL_S
                or buffer.error_bytes >= PART_ERRORS_BYTES
            ):
                writer.send(buffer, budget.trips)
                budget.trips.clear()
                buffer = PartBuffer(done)
                sent_at = now

    def _once(
        self,
        mode: Mode,
        func: Any,
        items: list[Any],
        initial: Any,
        run: Run,
        writer: PartWriter,
        filename: str,
    ) -> None:
        """A fold: one call over all the values, one result, inside one budget."""
        buffer = PartBuffer(0)
        if mode is Mode.COMBINE:
            func = _fold_combine(func)
            args: tuple[Any, ...] = (items, initial, run.has_initial)
        else:
            args = (items,)
        self.budget.start(run.timeout_s)
        try:
            value = func(*args)
            if self.budget.tripped:
                raise budget_mod.BudgetExceeded(self.budget.tripped)
        except BaseException as exc:
            buffer.fail(self._error(exc, filename, run.source))
        else:
            buffer.values.append(value)
        writer.send(buffer)

    def _release(self, table: dict[str, Any], timeout_s: float) -> None:
        """Drop the run's globals now, under a budget, before saying the run is done.

        Dropping them can run snippet code (a suspended generator's ``finally``); doing it here
        keeps that inside a budget and inside this run rather than at some later moment. The
        snippet's own names go first, while the budget's helpers are still there to stop such
        code; a finaliser's failure concerns no item and is not reported.
        """
        self.budget.start(timeout_s)
        hook = sys.unraisablehook
        sys.unraisablehook = _ignore_unraisable
        try:
            for name in [n for n in table if not n.startswith("_")]:
                del table[name]
            table.clear()
        finally:
            sys.unraisablehook = hook
        self.budget.trips.clear()

    def _error(self, exc: BaseException, filename: str, source: str) -> ErrorWire:
        if type(exc) is MemoryError:
            self.recycle = True
        kind, name, message, text = error_parts(
            exc, filename, source, self.limits.recursion_depth_max
        )
        return error_wire(kind, name, message, text)


def _ignore_unraisable(unraisable: Any) -> None:
    """Errors of a snippet's finalisers while its globals are dropped: nobody to tell."""


def _fold_combine(combine: Callable[[Any, Any], Any]) -> Callable[..., Any]:
    def fold(items: list[Any], initial: Any, has_initial: bool) -> Any:
        values = iter(items)
        acc = initial if has_initial else next(values, None)
        for item in values:
            acc = combine(acc, item)
        return acc

    return fold


def main(argv: list[str]) -> int:
    limits = SnippetSettings(**json.loads(argv[1])) if len(argv) > 1 else SnippetSettings()
    out = sys.stdout.buffer
    requests = sys.stdin.buffer
    # Anything the interpreter might print (warnings) goes to stderr, never into the replies.
    sys.stdout = sys.stderr
    apply_limits(limits)
    host = Host(limits, out)
    host.emit(Ready(os.getpid()))
    while True:
        try:
            run = read_frame(requests)
        except WireError:
            return 2
        if run is None:
            return 0
        host.handle(run)
        if host.recycle:
            return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
