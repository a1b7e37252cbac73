"""The last guard against a hanging test: no test runs past its time limit plus a grace.

pytest-timeout fails a test that runs past ``timeout`` by raising from a SIGALRM handler, once.
If the test's teardown then hangs as well (a fixture's cleanup awaiting something that never
comes), nothing stops it: the alarm has fired, and pytest's own faulthandler timer is cancelled
as soon as a test fails. This plugin keeps one deadline of ``timeout`` +
``timeout_teardown_grace_s`` over each test's whole run (setup, call and teardown) on a thread
of its own; past it, it writes every thread's stack to the real stderr and ends the run with
status 1, so a hang costs at most that long and says where it was.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import threading
import time
from collections.abc import Generator

import pytest

TEARDOWN_GRACE_S_DEFAULT = "15"
WATCHDOG_KEY = pytest.StashKey["Watchdog"]()


class Watchdog:
    """A thread that ends the process, with every thread's stack, once a deadline passes."""

    def __init__(self, stderr_fd: int) -> None:
        self._fd = stderr_fd
        self._changed = threading.Condition()
        self._deadline: float | None = None
        self._what = ""
        threading.Thread(target=self._watch, name="test-watchdog", daemon=True).start()

    def arm(self, seconds: float, what: str) -> None:
        with self._changed:
            self._deadline = time.monotonic() + seconds
            self._what = what
            self._changed.notify()

    def disarm(self) -> None:
        with self._changed:
            self._deadline = None
            self._changed.notify()

    def _watch(self) -> None:
        with self._changed:
            while True:
                if self._deadline is None:
                    self._changed.wait()
                    continue
                remaining = self._deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
            what = self._what
        os.write(self._fd, f"\n+++ {what}: still running; ending the test run +++\n".encode())
        faulthandler.dump_traceback(file=self._fd, all_threads=True)
        os._exit(1)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "timeout_teardown_grace_s",
        "seconds a test may run past its timeout (its teardown) before the run is ended",
        default=TEARDOWN_GRACE_S_DEFAULT,
    )


def pytest_configure(config: pytest.Config) -> None:
    # The real stderr, not the file capture puts in its place while a test runs.
    capture = config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        stderr_fd = os.dup(2)
    config.stash[WATCHDOG_KEY] = Watchdog(stderr_fd)


def timeout_of(item: pytest.Item) -> float:
    """The test's pytest-timeout limit in seconds (0: none): its marker, the flag, the ini."""
    marker = item.get_closest_marker("timeout")
    if marker is not None and marker.args:
        return float(marker.args[0])
    if marker is not None and "timeout" in marker.kwargs:
        return float(marker.kwargs["timeout"])
    option = item.config.getoption("timeout", None)
    if option is not None:
        return float(option)
    return float(item.config.getini("timeout") or 0)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    watchdog = item.config.stash[WATCHDOG_KEY]
    limit_s = timeout_of(item)
    if limit_s > 0:
        grace_s = float(item.config.getini("timeout_teardown_grace_s"))
        watchdog.arm(limit_s + grace_s, f"{item.nodeid} ran past {limit_s + grace_s:g}s")
    try:
        return (yield)
    finally:
        watchdog.disarm()


def pytest_enter_pdb(config: pytest.Config) -> None:
    """A debugging session is not a hang: the watchdog stands down until the next test."""
    config.stash[WATCHDOG_KEY].disarm()


def pytest_unconfigure(config: pytest.Config) -> None:
    if WATCHDOG_KEY in config.stash:
        config.stash[WATCHDOG_KEY].disarm()
