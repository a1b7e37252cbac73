from __future__ import annotations

import stat
import threading
from pathlib import Path

from disruptor.home import Home


def test_secrets_are_created_once_with_mode_0600(tmp_path: Path) -> None:
    home = Home(tmp_path / "h").ensure()
    secret = home.cluster_secret()
    token = home.api_token()
    assert len(secret) == 32
    assert home.cluster_secret() == secret
    assert home.api_token() == token
    for path in (home.secret_path, home.token_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_concurrent_creators_agree_on_one_secret(tmp_path: Path) -> None:
    home = Home(tmp_path / "h")
    seen: list[bytes] = []
    threads = [
        threading.Thread(target=lambda: seen.append(home.cluster_secret())) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 1


def test_each_peer_has_its_own_state_dir(tmp_path: Path) -> None:
    home = Home(tmp_path / "h")
    a = home.peer_dir("127.0.0.1", 1111)
    b = home.peer_dir("127.0.0.1", 2222)
    assert a != b and a.is_dir() and b.is_dir()
    assert a.parent == b.parent == home.root / "peers"
