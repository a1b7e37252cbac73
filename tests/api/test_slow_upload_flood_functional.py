"""A flood of slow uploads against a real peer process with few descriptors: the peer keeps
answering others throughout, and its descriptors and memory come back afterwards.

The attack, at a scale CI affords: 300 connections from one address, each a signed ``PUT`` of
``Content-Length: 1 GiB`` sending a byte every half second and never reading its answer, against
a peer whose descriptor limit is 400. Without limits each holds a socket and a temporary file:
600 descriptors, and the peer stops accepting anyone. Meanwhile another address (127.0.0.2)
asks for ``/health`` and ``/peers`` ten times a second; every answer must come, and be 200.
``benchmarks/chaos_bundles.py slow-uploads`` runs the same at full size.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import aiohttp
import pytest

from disruptor.bundles.signing import load_or_create_key, sign_manifest

from ..cluster import PeerProcess, wait_for

DESCRIPTORS = 400
ATTACKERS = 300
PROBE_ADDRESS = "127.0.0.2"
SETTINGS = {
    "http.body_grace_s": "3",
    "http.body_idle_timeout_s": "3",
    "http.body_rate_min_bytes_s": "1000",
    "http.connections_per_client_max": "150",
    "http.descriptors_reserved": "64",
    "bundles.uploads_per_client_max": "4",
}


def descriptors_of(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def slow_put(address: tuple[str, int], head: bytes, outcomes: list[str]) -> None:
    """One attacker: head, then a byte every 0.5 s, whatever the peer says, until it hangs up."""
    try:
        reader, writer = await asyncio.open_connection(*address)
    except OSError:
        outcomes.append("not connected")
        return
    answered = b""
    try:
        writer.write(head)
        while True:
            try:
                chunk = await asyncio.wait_for(reader.read(4096), 0.5)
            except TimeoutError:
                writer.write(b"x")
                await writer.drain()
                continue
            if not chunk:
                break
            answered += chunk
    except ConnectionError:
        pass
    finally:
        writer.close()
    status = answered.split(b"\r\n", 1)[0]
    outcomes.append(status.decode(errors="replace") or "closed without an answer")


async def probe(url: str, token: str, stop: asyncio.Event, results: list[str]) -> None:
    """Another client, from another address: /health and /peers, each on a new connection."""
    connector = aiohttp.TCPConnector(local_addr=(PROBE_ADDRESS, 0), force_close=True)
    timeout = aiohttp.ClientTimeout(total=3)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        while not stop.is_set():
            for path, headers in (
                ("/health", {}),
                ("/peers", {"Authorization": f"Bearer {token}"}),
            ):
                try:
                    async with http.get(url + path, headers=headers) as r:
                        results.append(f"{path} {r.status}")
                except (aiohttp.ClientError, TimeoutError) as exc:
                    results.append(f"{path} failed: {exc!r}")
            await asyncio.sleep(0.1)  # the probe's own pace


@pytest.fixture
def flooded_peer(tmp_path: Path) -> PeerProcess:
    if os.path.exists("/proc/self/fd") is False:
        pytest.skip("needs /proc to count the peer's descriptors")
    extra = [arg for key, value in SETTINGS.items() for arg in ("--set", f"{key}={value}")]
    (tmp_path / "home").mkdir()
    peer = PeerProcess(
        tmp_path / "home",
        extra_args=extra,
        wrapper=["prlimit", f"--nofile={DESCRIPTORS}:{DESCRIPTORS}", "--"],
    )
    try:
        peer.wait_ready()
    except BaseException:
        peer.stop()
        raise
    return peer


async def test_a_slow_upload_flood_leaves_the_peer_serving_others(
    flooded_peer: PeerProcess,
) -> None:
    peer = flooded_peer
    try:
        key, _ = load_or_create_key(peer.home / "keys" / "signing.key")
        body_sha1 = hashlib.sha1(b"never sent").hexdigest()
        manifest = sign_manifest(
            key,
            sha1=body_sha1,
            sha256=hashlib.sha256(b"never sent").hexdigest(),
            size=1024**3,
            name="demo",
            version="1.0",
            signed_at=1_700_000_000,
        )
        head = (
            f"PUT /bundles/{body_sha1} HTTP/1.1\r\nHost: {peer.address}\r\n"
            f"Authorization: Bearer {peer.token}\r\nContent-Length: {1024**3}\r\n"
            f"X-Disruptor-Manifest: {manifest.to_header()}\r\n\r\n"
        ).encode()
        pid = peer.proc.pid
        fds_before, rss_before = descriptors_of(pid), rss_of(pid)
        stop = asyncio.Event()
        probes: list[str] = []
        prober = asyncio.create_task(probe(peer.url, peer.token, stop, probes))
        outcomes: list[str] = []
        address = (peer.host, peer.port)
        attackers = [
            asyncio.create_task(slow_put(address, head, outcomes)) for _ in range(ATTACKERS)
        ]
        peak = 0
        loop = asyncio.get_running_loop()
        until = loop.time() + 6.0  # the flood at its height, then the pace cuts its uploads
        while loop.time() < until:
            peak = max(peak, descriptors_of(pid))
            await asyncio.sleep(0.05)  # sampling interval
        await asyncio.wait_for(asyncio.gather(*attackers), 60)
        stop.set()
        await prober
        tally = sorted({o: outcomes.count(o) for o in outcomes}.items())
        print(
            f"\nflood: {ATTACKERS} slow PUTs; peer descriptors {fds_before} before, peak {peak} "
            f"(limit {DESCRIPTORS}); outcomes {tally}; probes {len(probes)}"
        )
        failed = [p for p in probes if not p.endswith(" 200")]
        assert probes and not failed, failed[:5]
        assert peak < DESCRIPTORS
        assert outcomes.count("closed without an answer") <= 4  # the admitted ones, cut
        assert any(" 503 " in o for o in outcomes)
        # Descriptors and memory come back once the flood is over.
        wait_for(lambda: descriptors_of(pid) <= fds_before + 4, 30, "descriptors to come back")
        store_tmp = next((peer.home / "peers").iterdir()) / "store" / "tmp"
        wait_for(lambda: not any(store_tmp.iterdir()), 30, "temporary files to go")
        rss_after = rss_of(pid)
        print(f"peer memory {rss_before >> 20} MiB before, {rss_after >> 20} MiB after")
        assert rss_after < rss_before + 32 * 1024 * 1024
        assert "Too many open files" not in peer.log()
    finally:
        peer.stop()
