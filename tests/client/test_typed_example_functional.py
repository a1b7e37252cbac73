"""The client's types hold: ``typed_example.py`` passes ``mypy --strict``, a copy of it with a
misspelt method (``client.mapp``) and misspelt options (``polcy=``, ``chunk_sise=``) fails on
exactly those lines, and the example runs against a real peer."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from disruptor.home import Home

from ..cluster import PeerProcess

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = Path(__file__).with_name("typed_example.py")
TYPOS = {
    "client.map(square, range(10), **options)": "client.mapp(square, range(10), **options)",
    'range(5), policy="least-loaded")': 'range(5), polcy="least-loaded")',
    "range(100), chunk_size=10)": "range(100), chunk_sise=10)",
}


def mypy(tmp_path: Path, *files: Path) -> subprocess.CompletedProcess[str]:
    if shutil.which("mypy", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("mypy is not installed beside this Python (pip install -e '.[test]')")
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--config-file", str(ROOT / "pyproject.toml")]
        + ["--cache-dir", str(tmp_path / "mypy-cache"), "--no-error-summary"]
        + [str(f) for f in files],
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
        cwd=tmp_path,
    )


def test_the_example_type_checks_and_typos_do_not(tmp_path: Path) -> None:
    source = EXAMPLE.read_text()
    good = tmp_path / "example_good.py"
    good.write_text(source)
    typo = tmp_path / "example_typo.py"
    for right, wrong in TYPOS.items():
        assert source.count(right) == 1, right
        source = source.replace(right, wrong)
    typo.write_text(source)
    done = mypy(tmp_path, good, typo)
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    assert done.returncode == 1, done.stdout + done.stderr
    assert all(line.startswith("example_typo.py:") for line in errors), done.stdout
    lines = source.splitlines()
    flagged = {lines[int(re.split(r":", e)[1]) - 1].strip() for e in errors}
    assert any("client.mapp(" in line for line in flagged), done.stdout
    assert any("polcy=" in line for line in flagged), done.stdout
    assert any("chunk_sise=" in line for line in flagged), done.stdout
    assert '"Client" has no attribute "mapp"' in done.stdout
    assert 'Unexpected keyword argument "polcy"' in done.stdout
    assert 'Unexpected keyword argument "chunk_sise"' in done.stdout


@pytest.fixture
def peer_address(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    home = tmp_path / "home"
    Home(home).ensure()
    peer = PeerProcess(home).wait_ready()
    try:
        yield peer.address, home
    finally:
        peer.stop()


def test_the_example_runs_against_a_real_peer(peer_address: tuple[str, Path]) -> None:
    address, home = peer_address
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), address],
        env={**os.environ, "DISRUPTOR_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("ok")
