"""Packaging hook: ships the example bundles (``bundles/``) inside the wheel.

All metadata lives in ``pyproject.toml``. The example bundles are app directories, not Python
packages of disruptor (their code runs inside workers and is never imported by the peer), so they
are copied as data into ``disruptor/examples/`` at build time, where ``disruptor demo`` finds them
in an installed copy. A source checkout uses ``bundles/`` directly. ``MANIFEST.in`` puts
``bundles/`` in the sdist, so a wheel built from the sdist (what ``python -m build`` does) has
them too; a build that cannot find them fails rather than ship a demo that cannot run.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

EXAMPLES_SOURCE = Path(__file__).resolve().parent / "bundles"
SKIPPED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")


class BuildWithExamples(build_py):
    def run(self) -> None:
        super().run()
        if not (EXAMPLES_SOURCE / "wordcount" / "bundle.toml").is_file():
            raise SystemExit(f"the example bundles are missing from {EXAMPLES_SOURCE}")
        target = Path(self.build_lib) / "disruptor" / "examples"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(EXAMPLES_SOURCE, target, ignore=SKIPPED)


setup(cmdclass={"build_py": BuildWithExamples})
