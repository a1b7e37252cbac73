"""Real peers as real processes, for the ``*_functional`` tests.

``PeerProcess`` starts ``python -m disruptor peer`` with its own data directory (or a shared one),
waits on ``/health`` with a bound (never a bare sleep), and stops it with SIGTERM (graceful leave)
or SIGKILL (a crash).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from disruptor.ports import free_port

__all__ = ["PeerProcess", "eventually", "free_port", "wait_for"]

READY_TIMEOUT_S = 20.0
# How long ``eventually`` waits unless told otherwise: generous, because a loaded machine is slow,
# and it costs nothing when the condition holds early.
EVENTUALLY_S = 30.0
POLL_S = 0.02


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]], what: str, timeout_s: float = EVENTUALLY_S
) -> None:
    """Yield to the event loop until ``condition`` holds; fail naming ``what`` after ``timeout_s``.

    The one way tests wait for something in an event loop: never a bare sleep, always a bound.
    ``condition`` may be a coroutine function (it is awaited each time).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(POLL_S)


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """``eventually`` for code outside an event loop (polling subprocesses, sockets)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


class PeerProcess:
    def __init__(
        self,
        home: Path,
        port: int | None = None,
        seeds: Sequence[str] = (),
        host: str = "127.0.0.1",
        extra_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        log_dir: Path | None = None,
        wrapper: Sequence[str] = (),
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.home = home
        self.address = f"{host}:{self.port}"
        self.url = f"http://{self.address}"
        self.log_path = (log_dir or home) / f"peer-{self.port}.log"
        full_env = {**os.environ, "DISRUPTOR_HOME": str(home), **(env or {})}
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            # ``wrapper``: a command that runs the peer, e.g. prlimit with lower limits.
            [
                *wrapper,
                sys.executable,
                "-m",
                "disruptor",
                "peer",
                self.address,
                *seeds,
                *extra_args,
            ],
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> PeerProcess:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"peer {self.address} exited: {self.log()}")
            return self.healthy()

        wait_for(ready, timeout_s, f"peer {self.address} to serve")
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    @property
    def token(self) -> str:
        return (self.home / "api.token").read_text().strip()

    def terminate(self, timeout_s: float = 15.0) -> int:
        """SIGTERM (a graceful leave) and wait for the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout_s)
        finally:
            self._log.close()

    def kill(self) -> None:
        """SIGKILL: a crash, with no chance to say goodbye."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()

    def stop(self) -> None:
        try:
            self.terminate()
        except subprocess.TimeoutExpired:
            self.kill()


def item_of(answer: dict[str, Any], index: int) -> dict[str, Any]:
    """One item of a job's JSON answer as ``{"value": V}`` or ``{"error": {...}}``."""
    for error in answer.get("errors", []):
        if error["index"] == index:
            return {"error": error}
    return {"value": answer["values"][index]}


def rows_of_piece(piece: dict[str, Any]) -> list[dict[str, Any]]:
    """A streamed piece of results (an NDJSON line) as one ``{"index", "value"|"error", "peer"}``
    row per item."""
    if "start" in piece:
        indexes = list(range(piece["start"], piece["start"] + piece["count"]))
    else:
        indexes = list(piece["indexes"])
    failed = {error["index"]: error for error in piece.get("errors", [])}
    rows: list[dict[str, Any]] = []
    for index, value in zip(indexes, piece["values"], strict=True):
        row: dict[str, Any] = {"index": index, "peer": piece.get("peer")}
        if index in failed:
            row["error"] = failed[index]
        else:
            row["value"] = value
        rows.append(row)
    return rows
