"""Archives made by other tools: GNU tar with zstd unpacks like our own packer's."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from disruptor.bundles.settings import BundleSettings
from disruptor.bundles.unpack import check_archive, unpack_archive

from .archives import make_app


@pytest.mark.skipif(not shutil.which("zstd"), reason="needs the zstd CLI")
def test_an_archive_made_by_the_tar_cli_unpacks(tmp_path: Path) -> None:
    app = make_app(tmp_path / "app")
    archive = tmp_path / "cli.tar.zst"
    subprocess.run(["tar", "-I", "zstd -3", "-cf", str(archive), "-C", str(app), "."], check=True)
    assert check_archive(archive, BundleSettings()).name == "demo"
    dest = unpack_archive(archive, tmp_path / "out", tmp_path / "tmp", BundleSettings())
    assert (dest / "pkg" / "data.txt").read_bytes() == b"hello\n" * 100
