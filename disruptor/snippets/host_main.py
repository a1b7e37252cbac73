"""The snippet host: a small process that compiles and runs snippets for its peer.

Run as ``python -I -m disruptor.snippets.host_main LIMITS_JSON`` by ``hosts.HostPool`` with an empty
environment, no inherited descriptors but its three pipes, ``/`` as working directory, and these
limits set on itself before it reads any request: address space (``memory_mb``), no file writes,
a handful of descriptors, no new processes, no core dumps. It holds no secret and opens no file.

Wire (one JSON object a line). The peer sends ``{"sha1", "source", "mode": "map" | "reduce" |
"combine" | "check", "items": [...], "timeout_s", "flush_each"}``. The host answers
``{"rejected": detail}`` (the snippet does not compile or lacks its function), or
``{"started": true, "cached": bool}``, then one ``{"i": n, "value": V}`` or
``{"i": n, "error": {...}}`` per item in order, then ``{"done": true, "recycle": bool}``.
Rule: one request at a time; every reply line is plain JSON built by ``convert`` (no object a
snippet made is ever serialised directly); after a ``MemoryError`` the host answers ``recycle``
and exits, so the next batch gets a fresh interpreter.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from typing import IO, Any

from ..errors import SnippetRejected
from . import budget as budget_mod
from .compile import CodeCache, snippet_filename
from .convert import NotPlainData, error_parts, to_plain
from .policy import RunScope, SnippetSettings, make_builtins, make_guards

# Buffered replies are flushed at least this often, so the peer sees progress.
FLUSH_INTERVAL_S = 0.05
FLUSH_BYTES = 64 * 1024
FLUSH_ITEMS = 1000
# Results estimated larger than this are encoded once more to check their exact JSON size.
EXACT_SIZE_FROM = 64 * 1024
# Bound of the factors the inlined product accepts (see compile._inline_int_product).
MACHINE_INT = 2**63
_ENCODER = json.JSONEncoder(allow_nan=False, separators=(",", ":"))
ENTRY_POINTS = {"map": "handle", "reduce": "reduce", "combine": "combine"}
# ``fold`` picks reduce or combine, whichever the snippet defines (reduce first).


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
        self.cache = CodeCache(limits.compile_cache_max)
        self.budget = budget_mod.Budget()
        self.recycle = False
        # Outcomes not yet written: index of the first, the outcomes, their approximate size.
        self._first = 0
        self._outcomes: list[dict[str, Any]] = []
        self._pending_bytes = 0
        self._flushed_at = time.monotonic()

    def emit(self, message: dict[str, Any]) -> None:
        """Write a control message (after any outcomes still pending)."""
        self.flush()
        self.out.write(_ENCODER.encode(message).encode() + b"\n")
        self.out.flush()

    def add(self, index: int, outcome: dict[str, Any], size: int, flush_each: bool) -> None:
        """Queue one item's outcome; outcomes go out in chunks, at least every flush interval."""
        if not self._outcomes:
            self._first = index
        self._outcomes.append(outcome)
        self._pending_bytes += size
        count = len(self._outcomes)
        if (
            flush_each
            or self._pending_bytes >= FLUSH_BYTES
            or count >= FLUSH_ITEMS
            # The clock is read every 16 items only: reading it costs more than a small item.
            or (count & 15 == 0 and time.monotonic() - self._flushed_at > FLUSH_INTERVAL_S)
        ):
            self.flush()

    def flush(self) -> None:
        if self._outcomes:
            chunk = {"i": self._first, "outcomes": self._outcomes}
            self.out.write(_ENCODER.encode(chunk).encode() + b"\n")
            self.out.flush()
            self._outcomes = []
            self._pending_bytes = 0
        self._flushed_at = time.monotonic()

    def globals_for(self, scope: RunScope) -> dict[str, Any]:
        """Fresh globals for one run: nothing a previous run bound is visible."""
        table: dict[str, Any] = {
            "__builtins__": make_builtins(scope, self.limits),
            "__name__": "snippet",
            **make_guards(scope),
            "_print_": budget_mod.BoundedPrintCollector,
            "_inplacevar_": budget_mod.inplacevar,
            "_tick_": self.budget.tick,
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

    def handle(self, request: dict[str, Any]) -> None:
        sha1 = str(request["sha1"])
        source = str(request["source"])
        mode = str(request.get("mode", "map"))
        items = request.get("items") or []
        timeout_s = float(request.get("timeout_s", self.limits.item_timeout_s))
        flush_each = bool(request.get("flush_each", False))
        filename = snippet_filename(sha1)
        hits = self.cache.hits
        try:
            code = self.cache.get(source, sha1, self.limits.source_bytes_max)
        except SnippetRejected as exc:
            self.emit({"rejected": exc.detail})
            return
        if mode == "check":
            self.emit({"started": True, "cached": self.cache.hits > hits})
            self.emit({"done": True, "recycle": False})
            return
        scope = RunScope()
        table = self.globals_for(scope)
        budget_mod.reset_output()
        self.budget.start(timeout_s)
        table["_tick_"] = self.budget.tick
        top_error: BaseException | None = None
        try:
            exec(code, table)  # noqa: S102 - restricted code, restricted globals
            if self.budget.tripped:
                raise budget_mod.BudgetExceeded(self.budget.tripped)
        except BaseException as exc:
            top_error = exc
        entry = ENTRY_POINTS.get(mode, "handle")
        if mode == "fold":
            # The coordinator's fold: reduce(results) if the snippet has it, else combine.
            entry = "reduce" if "reduce" in table else "combine"
            mode = "reduce" if entry == "reduce" else "combine"
        func = table.get(entry)
        if top_error is None and func is None:
            self.emit({"rejected": f"the snippet defines no {entry}() function"})
            return
        if mode == "combine" and func is not None:
            func = _fold_combine(func)
        self.emit({"started": True, "cached": self.cache.hits > hits})
        calls = self._calls(mode, items, request)
        bytes_max = self.limits.result_bytes_max
        for index, args in enumerate(calls):
            if top_error is not None:
                self.add(index, self._error(top_error, filename, source), 1000, flush_each)
                continue
            self.budget.start(timeout_s)
            # A tripped budget gets a fresh ticker; the snippet's globals must see it.
            table["_tick_"] = self.budget.tick
            try:
                value = func(*args)  # type: ignore[misc]
                if self.budget.tripped:
                    raise budget_mod.BudgetExceeded(self.budget.tripped)
                plain, size = to_plain(value, bytes_max)
                if size > EXACT_SIZE_FROM and len(_ENCODER.encode(plain)) > bytes_max:
                    # The estimate counts characters; escapes can make the JSON longer.
                    raise NotPlainData(f"result is larger than {bytes_max} bytes as JSON")
                reply: dict[str, Any] = {"value": plain}
            except BaseException as exc:
                reply = self._error(exc, filename, source)
                size = 1000
            self.add(index, reply, size, flush_each)
        self._release(table, timeout_s)
        self.emit({"done": True, "recycle": self.recycle})

    def _release(self, table: dict[str, Any], timeout_s: float) -> None:
        """Drop the run's globals now, under a budget, before saying the batch is done.

        Dropping them can run snippet code (a suspended generator's ``finally``); doing it here
        keeps that inside a budget and inside this batch rather than at some later moment. The
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

    def _calls(self, mode: str, items: list[Any], request: dict[str, Any]) -> list[tuple[Any, ...]]:
        if mode == "reduce":
            return [(items,)]
        if mode == "combine" and "initial" not in request:
            return [(items, None, False)]
        if mode == "combine":
            # The whole fold is one outcome: ``_fold_combine`` runs it inside one budget.
            return [(items, request.get("initial"), bool(request.get("has_initial")))]
        return [(item,) for item in items]

    def _error(self, exc: BaseException, filename: str, source: str) -> dict[str, Any]:
        if type(exc) is MemoryError:
            self.recycle = True
        kind, name, message, text = error_parts(
            exc, filename, source, self.limits.recursion_depth_max
        )
        return {"error": {"kind": kind, "type": name, "message": message, "traceback": text}}


def _ignore_unraisable(unraisable: Any) -> None:
    """Errors of a snippet's finalisers while its globals are dropped: nobody to tell."""


def _fold_combine(combine: Any) -> Any:
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
    # Anything the interpreter might print (warnings) goes to stderr, never into the replies.
    sys.stdout = sys.stderr
    apply_limits(limits)
    host = Host(limits, out)
    host.emit({"ready": True, "pid": os.getpid()})
    for line in sys.stdin.buffer:
        try:
            request = json.loads(line)
        except ValueError:
            return 2
        host.handle(request)
        if host.recycle:
            return 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
