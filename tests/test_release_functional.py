"""The release: an sdist and a wheel built from it the standard way, installed into a fresh
environment, run ``disruptor demo`` there.

``python -m build`` makes the sdist first and builds the wheel from the unpacked sdist, so
anything the wheel ships (the example bundles) must be in the sdist. The build here skips build
isolation (no download: this environment already has the build requirements); ``.ci/run`` does the
same with isolation and a fresh environment whose dependencies come from the package index.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import tarfile
import zipfile
from email.parser import HeaderParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LEFT_OUT = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*.pyc", ".*_cache",
    ".hypothesis", "test-artifacts",
)  # fmt: skip


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist and the wheel built from it, from a copy of this checkout."""
    root = tmp_path_factory.mktemp("release")
    source = root / "source"
    shutil.copytree(ROOT, source, ignore=LEFT_OUT)
    out = root / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
        capture_output=True,
        check=True,
        timeout=100,
    )
    return out


def _only(directory: Path, pattern: str) -> Path:
    (found,) = directory.glob(pattern)
    return found


def test_the_sdist_carries_the_examples_docs_and_tests(dist: Path) -> None:
    with tarfile.open(_only(dist, "disruptor-*.tar.gz")) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    for expected in (
        "bundles/wordcount/bundle.toml",
        "bundles/wordcount/vendor/stemmer/__init__.py",
        "docs/architecture.md",
        "tests/conftest.py",
        "tests/workers/test_pool_functional.py",
        "SECURITY.md",
        "LICENSE",
    ):
        assert expected in names, expected
    assert not any("__pycache__" in name for name in names)


def test_the_wheel_from_the_sdist_ships_the_examples_and_says_where_the_project_lives(
    dist: Path,
) -> None:
    with zipfile.ZipFile(_only(dist, "disruptor-*.whl")) as wheel:
        names = set(wheel.namelist())
        metadata_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = HeaderParser().parsestr(wheel.read(metadata_name).decode())
    assert "disruptor/examples/wordcount/bundle.toml" in names
    assert "disruptor/examples/primes/bundle.toml" in names
    assert "disruptor/texts/gettysburg-address.txt" in names
    urls = dict(u.split(", ", 1) for u in metadata.get_all("Project-URL") or [])
    assert {"Homepage", "Documentation", "Source", "Issues"} <= set(urls)
    classifiers = metadata.get_all("Classifier") or []
    for version in ("3.11", "3.12", "3.13"):
        assert f"Programming Language :: Python :: {version}" in classifiers


def test_disruptor_demo_runs_from_the_installed_wheel(dist: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    # The dependencies come from this environment's site-packages (a plain path entry: its .pth
    # files, among them this checkout's editable install, are not read), disruptor from the wheel.
    deps = venv / "lib" / version / "site-packages" / "dependencies.pth"
    deps.write_text("\n".join(site.getsitepackages()) + "\n")
    wheel = _only(dist, "disruptor-*.whl")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
         "--no-index", str(wheel)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("DISRUPTOR_HOME", "PYTHONPATH")}
    env["TMPDIR"] = str(tmp_path)
    where = subprocess.run(
        [str(python), "-c", "import disruptor; print(disruptor.__file__)"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert where.stdout.startswith(str(venv)), where.stdout
    demo = subprocess.run(
        [str(venv / "bin" / "disruptor"), "demo"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=100, check=False,
    )  # fmt: skip
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "272 words in 10 sentences" in demo.stdout
