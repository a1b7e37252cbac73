"""Real WebDAV clients against a real peer: rclone lists and downloads bundles with their true
dates; litmus runs its ``basic`` and ``props`` suites as far as a content-addressed store allows.

Both come from Debian (``.ci/run`` installs them); without them the tests are skipped.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import aiohttp
import pytest

from disruptor.peer import Peer

from .test_bundles_functional import app_bundle, put

CLIENT_TIMEOUT_S = 60


async def run(*argv: str, cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run a client without blocking the loop that serves the peer; its output."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), CLIENT_TIMEOUT_S)
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


async def test_rclone_lists_and_downloads_bundles_with_their_dates(
    peer: Peer, tmp_path: Path
) -> None:
    rclone = shutil.which("rclone")
    if rclone is None:
        pytest.skip("rclone is not installed (Debian package rclone; .ci/run installs it)")
    data, manifest = app_bundle(peer.home, tmp_path)
    headers = {"Authorization": f"Bearer {peer.api_token}"}
    async with aiohttp.ClientSession(base_url=peer.url, headers=headers) as http:
        assert (await put(http, manifest.sha1, data, manifest)).status == 201
    assert peer.store is not None
    created = peer.store.info(manifest.sha1).created_at
    remote = [
        "--webdav-url",
        f"{peer.url}/bundles/",
        "--webdav-bearer-token",
        peer.api_token,
        "--config",
        "",
    ]
    code, out = await run(rclone, "lsjson", ":webdav:", *remote, cwd=tmp_path)
    assert code == 0, out
    listing = json.loads(out[out.index("[") :])
    assert [(e["Name"], e["Size"], e["IsDir"]) for e in listing] == [
        (manifest.sha1, len(data), False)
    ]
    # The stored date, not 1901 or 1970.
    mod_time = datetime.datetime.fromisoformat(listing[0]["ModTime"].replace("Z", "+00:00"))
    assert abs(mod_time.timestamp() - created) < 1
    target = tmp_path / "downloaded"
    code, out = await run(
        rclone, "copyto", f":webdav:{manifest.sha1}", str(target), *remote, cwd=tmp_path
    )
    assert code == 0, out
    assert hashlib.sha1(target.read_bytes()).hexdigest() == manifest.sha1
    assert abs(target.stat().st_mtime - created) < 1


async def test_litmus_runs_until_the_store_refuses_to_make_a_collection(
    peer: Peer, tmp_path: Path
) -> None:
    litmus = shutil.which("litmus")
    if litmus is None:
        pytest.skip("litmus is not installed (Debian package litmus; .ci/run installs it)")
    _code, out = await run(
        litmus,
        "--keep-going",
        f"{peer.url}/bundles/",
        "any-user",
        peer.api_token,  # HTTP Basic: litmus knows no bearer tokens
        cwd=tmp_path,
        env={"TESTS": "basic props"},
    )
    verdicts = re.findall(r"\d+\. (\w+)\.+ (pass|FAIL|SKIPPED|WARNING)", out)
    # Each suite connects and authenticates (init), then must create litmus/ to go on
    # (begin): a content-addressed store has no collections to make, and says so the way
    # RFC 4918 clients expect, 405 with the methods it allows, not 400, nor 401.
    assert verdicts == [("init", "pass"), ("begin", "FAIL")] * 2, out
    assert out.count("Could not create new collection") == 2, out
    assert out.count("405 Method Not Allowed") == 2, out
    assert "summary for `basic': of 2 tests run: 1 passed, 1 failed" in out, out
    assert "summary for `props': of 2 tests run: 1 passed, 1 failed" in out, out
