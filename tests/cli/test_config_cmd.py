from __future__ import annotations

import json
from pathlib import Path

import pytest

from disruptor.cli import main
from disruptor.home import Home


def test_config_show_prints_values_and_sources(
    home: Home, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    home.config_path.write_text('[peer]\ncluster_name = "blue"\n')
    monkeypatch.setenv("DISRUPTOR_HTTP_KEEPALIVE_TIMEOUT_S", "12")
    assert main(["config", "show", "--set", "log.level=info"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"# settings file: {home.config_path}"
    row = {line.split()[0]: line.split(None, 2)[1:] for line in lines[2:]}
    assert row["peer.cluster_name"] == ["blue", f"file {home.config_path}"]
    assert row["http.keepalive_timeout_s"] == ["12.0", "env DISRUPTOR_HTTP_KEEPALIVE_TIMEOUT_S"]
    assert row["log.level"] == ["info", "flag --set"]
    assert row["peer.insecure_dev"] == ["false", "default"]


def test_config_show_json_and_explicit_file(
    home: Home, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other.toml"
    other.write_text("[http]\nheader_timeout_s = 3\n")
    assert main(["config", "show", "--json", "--config", str(other)]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["config_file"] == str(other)
    entry = next(e for e in body["settings"] if e["name"] == "http.header_timeout_s")
    assert entry == {"name": "http.header_timeout_s", "value": 3.0, "source": f"file {other}"}


def test_a_bad_setting_is_one_line_and_status_1(
    home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    home.config_path.write_text("[http]\nkeepalive = 1\n")
    assert main(["config", "show"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "http.keepalive" in err
