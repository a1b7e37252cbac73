"""The public package in a fresh interpreter: importing it loads no HTTP stack."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_package_does_not_load_the_http_stack() -> None:
    code = "import sys, disruptor; print('aiohttp' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
