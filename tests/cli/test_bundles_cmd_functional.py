"""``disruptor push|ls|pull`` against a real peer process, as a user types them."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from ..bundles.archives import make_app
from ..cluster import PeerProcess


def cli(home: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DISRUPTOR_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "disruptor", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_push_ls_pull(tmp_path: Path) -> None:
    home = tmp_path / "home"
    peer = PeerProcess(home, log_dir=tmp_path).wait_ready()
    try:
        app = make_app(tmp_path / "app", {"big.bin": os.urandom(5 * 1024 * 1024)})
        pushed = cli(home, "push", str(app), "--peer", peer.address)
        assert pushed.returncode == 0, pushed.stderr
        sha1 = pushed.stdout.strip()
        assert len(sha1) == 40 and "stored" in pushed.stderr
        # The first push made this user's signing key, and said so; the next one uses it.
        key_path = home / "keys" / "signing.key"
        assert f"created your signing key {key_path}" in pushed.stderr and key_path.exists()
        again = cli(home, "push", str(app), "--peer", peer.address)
        assert again.stdout.strip() == sha1 and "already held" in again.stderr
        assert "signing key" not in again.stderr
        listed = cli(home, "ls", "--peer", peer.address)
        assert listed.returncode == 0 and sha1 in listed.stdout and "demo" in listed.stdout
        out = tmp_path / "pulled.tar.zst"
        pulled = cli(home, "pull", sha1, "--peer", peer.address, "-o", str(out))
        assert pulled.returncode == 0, pulled.stderr
        assert hashlib.sha1(out.read_bytes()).hexdigest() == sha1
    finally:
        peer.stop()
