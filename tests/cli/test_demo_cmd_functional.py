"""``disruptor demo``: three peer processes, wordcount over a real text, and a clean exit."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

from disruptor.cli.demo_cmd import TEXT, example_path


def healthy(address: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{address}/health", timeout=1) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


def test_demo_runs_wordcount_on_three_peers_and_cleans_up(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DISRUPTOR_HOME"}
    env["TMPDIR"] = str(tmp_path)  # its temporary data directory goes here, to be checked
    done = subprocess.run(
        [sys.executable, "-m", "disruptor", "demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    addresses = re.findall(r"^  peer (\S+)$", out, re.MULTILINE)
    assert len(addresses) == 3
    sentences = [line for line in example_path("texts", TEXT).read_text().splitlines() if line]
    rows = re.findall(r"^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\S+)\s+", out, re.MULTILINE)
    assert [int(r[0]) for r in rows] == list(range(1, len(sentences) + 1))
    # The Gettysburg Address (Bliss copy) has 272 words.
    assert "272 words in 10 sentences" in out
    ran_on = {r[3] for r in rows}
    assert ran_on == set(addresses), "every peer ran part of the job"
    assert f"status page: http://{addresses[0]}/" in out
    # Nothing is left behind: no peer answers, the temporary data directory is gone.
    assert not any(healthy(a) for a in addresses)
    home = re.search(r"data directory (\S+)\)", out)
    assert home is not None and not Path(home.group(1)).exists()
