from __future__ import annotations

import re
from pathlib import Path

import pytest

from disruptor.address import Address
from disruptor.errors import BadRequest
from disruptor.settings_sources import load_settings, parse_assignment, schema

FILE = """
[peer]
cluster_name = "from-file"
seeds = ["127.0.0.1:2001", "127.0.0.1:2002"]
preset = "lan"

[http]
keepalive_timeout_s = 30
header_timeout_s = 5

[log]
format = "json"
"""


def write(tmp_path: Path, text: str = FILE) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_flags_beat_env_beat_file_beat_defaults(tmp_path: Path) -> None:
    env = {
        "DISRUPTOR_PEER_CLUSTER_NAME": "from-env",
        "DISRUPTOR_HTTP_KEEPALIVE_TIMEOUT_S": "40",
        "DISRUPTOR_PEER": "127.0.0.1:9",  # the CLI's default peer, not a setting: ignored
    }
    flags = {
        "peer.cluster_name": ("from-flag", "--cluster-name"),
        "peer.address": ("127.0.0.1:3000", "HOST:PORT"),
    }
    settings = load_settings(config_file=write(tmp_path), env=env, flags=flags)
    config = settings.peer
    assert config.cluster_name == "from-flag"
    assert settings.source_of("peer.cluster_name") == "flag --cluster-name"
    assert config.http.keepalive_timeout_s == 40.0
    assert (
        settings.source_of("http.keepalive_timeout_s") == "env DISRUPTOR_HTTP_KEEPALIVE_TIMEOUT_S"
    )
    assert config.http.header_timeout_s == 5.0
    assert settings.source_of("http.header_timeout_s").startswith("file ")
    assert config.seeds == (Address("127.0.0.1", 2001), Address("127.0.0.1", 2002))
    assert config.address == Address("127.0.0.1", 3000)
    assert config.preset == "lan"
    assert settings.log.format == "json"
    assert settings.source_of("http.json_body_bytes_max") == "default"


def test_env_strings_are_parsed_by_the_settings_type(tmp_path: Path) -> None:
    env = {
        "DISRUPTOR_HOME": str(tmp_path / "h"),
        "DISRUPTOR_PEER_INSECURE_DEV": "yes",
        "DISRUPTOR_PEER_SEEDS": "127.0.0.1:1, 127.0.0.1:2",
        "DISRUPTOR_HTTP_JSON_BODY_BYTES_MAX": "1_000",
    }
    settings = load_settings(env=env)
    assert settings.peer.insecure_dev is True
    assert len(settings.peer.seeds) == 2
    assert settings.peer.http.json_body_bytes_max == 1000
    assert settings.peer.home == tmp_path / "h"
    assert settings.config_file == tmp_path / "h" / "config.toml"
    assert settings.source_of("peer.home") == "env DISRUPTOR_HOME"


def test_a_missing_file_is_fine_and_every_part_section_is_listed(tmp_path: Path) -> None:
    settings = load_settings(config_file=tmp_path / "absent.toml", env={})
    names = {e.name for e in settings.entries}
    assert {"peer.address", "http.keepalive_timeout_s", "log.level"} <= names
    for section in schema():
        assert any(name.startswith(section + ".") for name in names)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[nope]\nx = 1\n", "unknown section [nope]"),
        ("[http]\nkeepalive = 1\n", "unknown setting http.keepalive"),
        ("[http]\nkeepalive_timeout_s = 'soon'\n", "http.keepalive_timeout_s"),
        ("[peer]\nhome = '/elsewhere'\n", "unknown setting peer.home"),
        ("[peer]\naddress = 'nowhere'\n", "peer.address"),
        ("[log]\nlevel = 'loud'\n", "log.level must be one of"),
        ("[http\n", "not valid TOML"),
        ("http = 3\n", "must be a table"),
    ],
)
def test_bad_files_are_errors_naming_the_key(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(BadRequest) as caught:
        load_settings(config_file=write(tmp_path, text), env={})
    assert says in caught.value.detail


def test_bad_flags_and_env_are_errors_naming_where(tmp_path: Path) -> None:
    absent = tmp_path / "absent.toml"
    with pytest.raises(BadRequest, match=re.escape("--set: unknown setting 'http.nope'")):
        load_settings(config_file=absent, env={}, flags={"http.nope": ("1", "--set")})
    with pytest.raises(BadRequest, match="env DISRUPTOR_HTTP_HEADER_TIMEOUT_S"):
        load_settings(config_file=absent, env={"DISRUPTOR_HTTP_HEADER_TIMEOUT_S": "x"})
    assert parse_assignment("http.x = 3") == ("http.x", "3")
    with pytest.raises(BadRequest):
        parse_assignment("no-equals")


def test_untouched_gossip_keys_show_the_presets_values(tmp_path: Path) -> None:
    absent = tmp_path / "absent.toml"
    settings = load_settings(config_file=absent, env={}, flags={"peer.preset": ("wan", "--preset")})
    assert settings.source_of("membership.probe_interval_s") == "preset wan"
    assert settings.peer.membership.probe_interval_s == 5.0
    env = {"DISRUPTOR_MEMBERSHIP_PROBE_INTERVAL_S": "2"}
    settings = load_settings(config_file=absent, env=env)
    assert settings.peer.membership.probe_interval_s == 2.0
    assert settings.source_of("membership.probe_interval_s").startswith("env ")
    with pytest.raises(BadRequest, match="unknown gossip preset"):
        load_settings(config_file=absent, env={"DISRUPTOR_PEER_PRESET": "nope"})
