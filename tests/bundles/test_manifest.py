from __future__ import annotations

import pytest

from disruptor.bundles.manifest import (
    AppManifest,
    WorkerLimits,
    parse_app_manifest,
)
from disruptor.errors import ManifestInvalid

FULL = """
name = "wordcount"
version = "1.0.0"
description = "counts words"

[worker]
handler = "wordcount:handle"
concurrency = 2
count = 3
timeout_s = 5
env = { GREETING = "hi" }

[limits]
memory_mb = 512
processes = 8
"""


def test_full_manifest_parses() -> None:
    m = parse_app_manifest(FULL)
    assert isinstance(m, AppManifest)
    assert (m.name, m.version, m.description) == ("wordcount", "1.0.0", "counts words")
    assert m.worker.handler == "wordcount:handle"
    assert m.worker.command is None
    assert (m.worker.concurrency, m.worker.count, m.worker.timeout_s) == (2, 3, 5.0)
    assert dict(m.worker.env) == {"GREETING": "hi"}
    assert m.limits.memory_mb == 512 and m.limits.processes == 8
    assert m.limits.open_files == WorkerLimits().open_files


def test_defaults_and_command() -> None:
    m = parse_app_manifest('name="a"\nversion="1"\n[worker]\ncommand=["./w", "--x"]\n')
    assert m.worker.command == ("./w", "--x")
    assert m.worker.handler is None
    assert (m.worker.concurrency, m.worker.count, m.worker.timeout_s) == (1, 1, 60.0)
    assert m.limits == WorkerLimits()


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('version="1"', "name"),
        ('name="a"', "version"),
        ('name="Bad Name"\nversion="1"', "name"),
        ('name="a"\nversion="1"\ncolour="red"', "colour"),
        ('name="a"\nversion="1"\n[worker]\nhandler="nocolon"', "worker.handler"),
        ('name="a"\nversion="1"\n[worker]\nhandler="m:f"\ncommand=["x"]', "worker.handler"),
        ('name="a"\nversion="1"\n[worker]\ncommand=[]', "worker.command"),
        ('name="a"\nversion="1"\n[worker]\ncommand=["/bin/sh"]', "worker.command"),
        ('name="a"\nversion="1"\n[worker]\nhandler="m:f"\nconcurrency=0', "worker.concurrency"),
        ('name="a"\nversion="1"\n[worker]\nhandler="m:f"\ncount="1"', "worker.count"),
        ('name="a"\nversion="1"\n[worker]\nhandler="m:f"\nenv={X=1}', "worker.env.X"),
        ('name="a"\nversion="1"\n[limits]\nmemory_mb=true', "limits.memory_mb"),
        ('name="a"\nversion="1"\n[limits]\nnice=3', "limits.nice"),
        ('name="a"\nversion="1"\nworker=3', "worker"),
    ],
)
def test_bad_manifest_names_the_field(text: str, field: str) -> None:
    with pytest.raises(ManifestInvalid) as info:
        parse_app_manifest(text)
    assert info.value.detail.startswith(field)


def test_not_toml() -> None:
    with pytest.raises(ManifestInvalid, match="not valid TOML"):
        parse_app_manifest(b"name = = 3")
    with pytest.raises(ManifestInvalid, match="not valid TOML"):
        parse_app_manifest(b"\xff\xfe")
