"""Fixtures for the worker tests: bundle directories written on the spot, and a running pool."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import textwrap
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from disruptor.workers.pool import DirectorySource, WorkerPool
from disruptor.workers.settings import WorkerSettings

HAS_BWRAP = shutil.which("bwrap") is not None
IS_ROOT = os.geteuid() == 0
MODES = [
    pytest.param("bwrap", marks=pytest.mark.skipif(not HAS_BWRAP, reason="bwrap not installed")),
    "plain",
]
# Generous bounds: the machine running the tests may be loaded.
TEST_SETTINGS = WorkerSettings(
    ready_timeout_s=20.0,
    drain_timeout_s=10.0,
    restart_backoff_initial_s=0.05,
    restart_backoff_max_s=0.2,
    crash_loop_crashes=3,
    crash_loop_window_s=120.0,
)


def write_bundle(
    root: Path,
    name: str,
    files: dict[str, str],
    *,
    handler: str | None = "app:handle",
    command: list[str] | None = None,
    worker: str = "",
    limits: str = "",
) -> Path:
    """A bundle directory: ``bundle.toml`` plus ``files`` (dedented)."""
    directory = root / name
    directory.mkdir(parents=True)
    spec = f"command = {json.dumps(command)}" if command else f'handler = "{handler}"'
    (directory / "bundle.toml").write_text(
        f'name = "{name}"\nversion = "1.0"\n\n[worker]\n{spec}\n{worker}\n\n[limits]\n{limits}\n'
    )
    for rel, text in files.items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return directory


def fake_sha1(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()


class Bundles:
    """Registers bundle directories with the pool's source under made-up SHA-1 names."""

    def __init__(self, root: Path, source: DirectorySource) -> None:
        self.root = root
        self.source = source

    def add(self, name: str, files: dict[str, str], **kwargs: Any) -> str:
        directory = write_bundle(self.root, name, files, **kwargs)
        sha1 = fake_sha1(name)
        self.source.directories[sha1] = directory
        return sha1


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    """A data directory laid out like a real one, with secrets a worker must never read."""
    root = tmp_path / "home"
    root.mkdir(mode=0o700)
    for name, text in (("cluster.secret", "s3cr3t-cluster\n"), ("api.token", "t0ken\n")):
        fd = os.open(root / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, text.encode())
        os.close(fd)
    (root / "keys").mkdir(mode=0o700)
    return root


PoolFactory = Callable[..., "WorkerPool"]


@pytest.fixture
async def make_pool(data_root: Path, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    pools: list[WorkerPool] = []

    async def factory(mode: str = "auto", **overrides: Any) -> tuple[WorkerPool, Bundles]:
        source = DirectorySource()
        state = data_root / "peers" / f"127.0.0.1_{len(pools)}"
        state.mkdir(parents=True, mode=0o700)
        settings = WorkerSettings(**{**TEST_SETTINGS.__dict__, "isolation": mode, **overrides})
        pool = WorkerPool(source, state, settings, data_root=data_root)
        await pool.start()
        pools.append(pool)
        bundles_root = state / "unpacked"
        bundles_root.mkdir(mode=0o700)
        return pool, Bundles(bundles_root, source)

    yield factory
    for pool in pools:
        await pool.stop()
