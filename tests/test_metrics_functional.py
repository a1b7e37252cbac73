"""The exposition passes ``promtool check metrics`` (run as a process, when installed)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from disruptor.metrics import Metrics

from .test_metrics import fake_parts

PROMTOOL = shutil.which("promtool")


def promtool_check(text: bytes) -> None:
    """``promtool check metrics`` must accept the exposition with no lint problem."""
    if PROMTOOL is None:
        pytest.skip("promtool is not installed (Debian package prometheus)")
    done = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()


def test_the_exposition_passes_promtool() -> None:
    promtool_check(Metrics(fake_parts()).render())
