"""The test watchdog ends a run whose test hangs in its teardown after pytest-timeout failed it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

HANGING = """\
    import asyncio

    import pytest


    @pytest.fixture
    async def stuck_cleanup():
        yield
        await asyncio.Event().wait()  # a cleanup waiting for something that never comes


    async def test_hangs(stuck_cleanup):
        await asyncio.Event().wait()


    def test_after():
        pass
"""

INI = """\
    [pytest]
    asyncio_mode = auto
    asyncio_default_fixture_loop_scope = function
    timeout = 1
    timeout_teardown_grace_s = 1
"""


def _run(tmp_path: Path, *plugins: str, bound_s: float) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_hanging.py").write_text(textwrap.dedent(HANGING))
    (tmp_path / "pytest.ini").write_text(textwrap.dedent(INI))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *plugins],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=bound_s,
        check=False,
    )


def test_pytest_timeout_alone_does_not_end_a_hanging_teardown(tmp_path: Path) -> None:
    with pytest.raises(subprocess.TimeoutExpired):
        _run(tmp_path, bound_s=5)


def test_the_watchdog_ends_the_run_with_every_stack(tmp_path: Path) -> None:
    result = _run(tmp_path, "-p", "tests.watchdog", bound_s=60)
    assert result.returncode == 1
    assert "test_hanging.py::test_hangs ran past 2s" in result.stderr
    # Every thread's stack, the main thread's showing the phase it hung in.
    assert "Thread 0x" in result.stderr and "in pytest_runtest_teardown" in result.stderr
    assert "test_after" not in result.stdout + result.stderr
