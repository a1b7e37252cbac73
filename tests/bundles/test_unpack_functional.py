"""Archives in real processes: GNU tar with zstd unpacks like our own packer's, and the archive
check's memory stays bounded whatever the archive's names.

For the memory check, a fresh interpreter scans one archive with ``check_archive`` and reports how
far its peak resident memory grew during the scan (``VmHWM`` before and after). It runs under an
address-space limit so that a check that keeps whole paths fails fast with ``MemoryError``
instead of taking the machine's memory.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from disruptor.bundles.settings import BundleSettings
from disruptor.bundles.unpack import check_archive, unpack_archive

from .archives import deep_names, make_app, zst


@pytest.mark.skipif(not shutil.which("zstd"), reason="needs the zstd CLI")
def test_an_archive_made_by_the_tar_cli_unpacks(tmp_path: Path) -> None:
    app = make_app(tmp_path / "app")
    archive = tmp_path / "cli.tar.zst"
    subprocess.run(["tar", "-I", "zstd -3", "-cf", str(archive), "-C", str(app), "."], check=True)
    assert check_archive(archive, BundleSettings()).name == "demo"
    dest = unpack_archive(archive, tmp_path / "out", tmp_path / "tmp", BundleSettings())
    assert (dest / "pkg" / "data.txt").read_bytes() == b"hello\n" * 100


SCAN_MEMORY_BYTES_MAX = 64 * 1024 * 1024  # the limit docs/bundles.md states
CHILD_ADDRESS_SPACE_BYTES = 1024 * 1024 * 1024

CHILD = """
import json, resource, sys
from pathlib import Path
from disruptor.bundles.settings import BundleSettings
from disruptor.bundles.unpack import check_archive
from disruptor.errors import DisruptorError
limit = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
def peak_kib():
    # VmHWM: this process's own peak (ru_maxrss would start from the parent's at fork).
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
before = peak_kib()
try:
    check_archive(Path(sys.argv[1]), BundleSettings())
    outcome = "accepted"
except DisruptorError as exc:
    outcome = exc.slug + ": " + exc.detail
except MemoryError:
    outcome = "MemoryError"
after = peak_kib()
print(json.dumps({"outcome": outcome, "grew_bytes": (after - before) * 1024}))
"""


def scan_in_a_fresh_process(archive: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(archive), str(CHILD_ADDRESS_SPACE_BYTES)],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_deep_long_names_are_refused_within_the_memory_limit_functional(tmp_path: Path) -> None:
    # 8,000 entries, each a 62-level path of 63-character parts never seen before: a check that
    # keeps every ancestor path needed 2 GB for this archive (0.4 MB compressed).
    archive = tmp_path / "deep.tar.zst"
    archive.write_bytes(zst(deep_names(8000)))
    result = scan_in_a_fresh_process(archive)
    assert str(result["outcome"]).startswith("archive-unsafe: the archive's names need more")
    grew = result["grew_bytes"]
    assert isinstance(grew, int) and grew < SCAN_MEMORY_BYTES_MAX, result
