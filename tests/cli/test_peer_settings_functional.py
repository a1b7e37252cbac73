"""``disruptor peer`` as a real process: settings from its file and flags; JSON logs with ids."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from ..cluster import PeerProcess, wait_for


def get(url: str, token: str, request_id: str) -> bytes:
    request = urllib.request.Request(
        url, headers={"Authorization": f"Bearer {token}", "X-Request-Id": request_id}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["X-Request-Id"] == request_id
        body: bytes = response.read()
        return body


def test_peer_runs_with_layered_settings_and_logs_json_with_request_ids(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(
        '[peer]\ncluster_name = "from-file"\n\n[log]\nlevel = "warning"\n'
    )
    peer = PeerProcess(
        home,
        extra_args=["--log-format", "json", "--log-level", "info"],
    )
    try:
        peer.wait_ready()
        metrics = get(peer.url + "/metrics", peer.token, "trace-me-1").decode()
        assert 'cluster="from-file"' in metrics

        def logged() -> bool:
            return "trace-me-1" in peer.log()

        wait_for(logged, 10, "the request's log line")
    finally:
        peer.stop()
    output = peer.log_path.read_text()
    assert "cluster         from-file" in output
    assert f"dashboard       {peer.url}/" in output
    assert f"metrics         {peer.url}/metrics" in output
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    access = [e for e in lines if e.get("request_id") == "trace-me-1"]
    assert access and access[0]["logger"] == "disruptor.http"
    assert access[0]["msg"].startswith("GET /metrics 200")
