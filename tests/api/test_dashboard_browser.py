"""The dashboard in a real browser (Debian's chromium driven by Playwright) on real peers.

Three real peer processes; the page must list all three, show a running job's progress moving,
and turn a peer killed with SIGKILL dead within the gossip's detection time. On a lone fresh peer,
a job left to the peer's chunking must show its progress moving in small steps and its rate (not
"idle") while it runs. Every wait is on a condition of the page, with a bound; jobs watched
running are long and cancelled once seen, so the machine's load cannot end them too soon.
Screenshots are left in ``test-artifacts/dashboard.png`` and ``dashboard-progress.png``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from disruptor.membership.settings import preset
from disruptor.membership.suspicion import suspicion_timeout_s

from ..cluster import PeerProcess

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
BUNDLE_DIR = ROOT / "bundles" / "primes"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
    ),
]

# Each item busies a snippet host for a moment, so a job of many items runs for seconds and its
# progress can be watched moving.
SLOW_SNIPPET = """
def handle(item):
    total = 0
    for i in range(item):
        total += i % 7
    return total
"""
# About 0.1 s an item: a piece of a few items takes about a second, the dashboard's refresh, and a
# job of a hundred items runs long enough to be watched whatever the load (it is then cancelled).
PROGRESS_LOOPS = 4_000_000
PAGE_WAIT_S = 30.0
IN_PEERS = "() => !!document.activeElement.closest('#peers-body')"
ALIVE_ROWS = "document.querySelectorAll('#peers-body tr[data-state=alive]')"


def detection_bound_s(peers: int) -> float:
    """Longest time the gossip may take to declare a crashed peer dead, plus the page's refresh.

    Suspicion starts within a probe period or two and lasts at most ``suspicion_max_timeout_mult``
    times the shortest suspicion timeout; the margin covers a loaded machine and the 1 s refresh.
    """
    cfg = preset("local")
    longest = cfg.suspicion_max_timeout_mult * suspicion_timeout_s(
        cfg.suspicion_mult, peers, cfg.probe_interval_s
    )
    return longest + 3 * cfg.probe_interval_s + 10.0


def call(peer: PeerProcess, method: str, path: str, body: Any = None) -> Any:
    """One API call to ``peer``; its JSON answer."""
    request = urllib.request.Request(
        peer.url + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {peer.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def post_job(peer: PeerProcess, items: list[int], **options: Any) -> str:
    body = {"snippet": SLOW_SNIPPET, "items": items, "chunk_size": 1, "wait": False, **options}
    return str(call(peer, "POST", "/jobs", body)["id"])


def cli(home: Path, *args: str) -> str:
    """Run ``disruptor ARGS`` against the cluster's data directory; its standard output."""
    done = subprocess.run(
        [sys.executable, "-m", "disruptor", *args],
        env={**os.environ, "DISRUPTOR_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def outcome_of(job: str) -> str:
    """The page's outcome cell for a finished job (a JavaScript expression)."""
    return f"document.querySelector('#recent-body tr[data-key=\"{job}\"]')?.children[2].textContent"


def until(page: Any, body: str, timeout_s: float = PAGE_WAIT_S) -> None:
    """Wait, with a bound, for a condition on the page (a function body returning a boolean)."""
    # A function, not a bare expression: the page's CSP forbids eval of strings.
    page.wait_for_function(f"() => {{ {body} }}", timeout=timeout_s * 1000)


@pytest.fixture
def lone_peer(tmp_path: Path) -> Iterator[PeerProcess]:
    home = tmp_path / "home"
    home.mkdir()
    peer = PeerProcess(home, log_dir=tmp_path)
    try:
        yield peer.wait_ready()
    finally:
        peer.stop()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[list[PeerProcess]]:
    home = tmp_path / "home"
    home.mkdir()
    peers: list[PeerProcess] = []
    try:
        first = PeerProcess(home, log_dir=tmp_path)
        peers.append(first)
        first.wait_ready()
        for _ in range(2):
            peers.append(PeerProcess(home, seeds=[first.address], log_dir=tmp_path))
        for peer in peers:
            peer.wait_ready()
        yield peers
    finally:
        for peer in peers:
            peer.stop()


def test_dashboard_shows_the_cluster_live(cluster: list[PeerProcess]) -> None:
    from playwright.sync_api import sync_playwright

    watched, _, victim = cluster
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.set_default_timeout(PAGE_WAIT_S * 1000)
            # The token once in the URL becomes a cookie; the address bar is left clean.
            page.goto(f"{watched.url}/?token={watched.token}")
            assert page.url == watched.url + "/"

            # All three peers listed, alive, each linked to its own page.
            until(page, f"return {ALIVE_ROWS}.length === 3;")
            for peer in cluster:
                link = page.locator(f'#peers-body tr[data-address="{peer.address}"] a')
                assert link.get_attribute("href") == peer.url + "/"
            assert page.locator("#live").get_attribute("class") == "live on"

            # A bundle pushed and its workers started show up without a reload.
            sha1 = cli(watched.home, "push", str(BUNDLE_DIR), "--peer", watched.address)
            cli(watched.home, "start", sha1, "--count", "2", "--peer", watched.address)
            until(
                page, f"return !!document.querySelector('#bundles-body tr[data-key=\"{sha1}\"]');"
            )
            until(
                page,
                f"return document.querySelector('#workers-body tr[data-key=\"{sha1}\"]')"
                "?.children[1].textContent === '2 / 2';",
            )

            # A running job's progress moves (with no reload: the page is updated by events).
            # The job is long (minutes of work) so that it is still running whatever the load;
            # once seen moving it is cancelled, and a short one shows a job completing.
            job = post_job(watched, [PROGRESS_LOOPS] * 120)
            running = f"document.querySelector('#jobs-body tr[data-key=\"{job}\"]')"
            until(
                page,
                f"const r = {running}; return !!r && +r.dataset.done > 0"
                " && +r.dataset.done < +r.dataset.total;",
            )
            before = int(
                page.locator(f'#jobs-body tr[data-key="{job}"]').get_attribute("data-done") or 0
            )
            until(page, f"const r = {running}; return !!r && +r.dataset.done > {before};")
            call(watched, "DELETE", f"/jobs/{job}")
            until(page, f"return {outcome_of(job)} === 'cancelled';")
            short = post_job(watched, [1, 2, 3, 4])
            until(page, f"return {outcome_of(short)} === 'completed';")

            # A crashed peer turns dead on the page within the detection time.
            victim.kill()
            victim_row = f'#peers-body tr[data-address="{victim.address}"]'
            until(
                page,
                f"return document.querySelector('{victim_row}')?.dataset.state === 'dead';",
                timeout_s=detection_bound_s(3),
            )
            assert page.evaluate(f"() => {ALIVE_ROWS}.length") == 2

            # The picture people look at: two alive, one dead, a job in flight, history charted.
            job = post_job(watched, [PROGRESS_LOOPS] * 400)
            running = f"document.querySelector('#jobs-body tr[data-key=\"{job}\"]')"
            until(page, f"const r = {running}; return !!r && +r.dataset.done > 0;")
            # The chart and the throughput card are fed live too.
            until(page, "return parseFloat(document.querySelector('#n-rate').textContent) > 0;")

            # Keyboard: a few Tabs reach the peers table, and the focused row is outlined.
            for _ in range(10):
                page.keyboard.press("Tab")
                if page.evaluate(IN_PEERS):
                    break
            assert page.evaluate(IN_PEERS), "Tab never reached the peers table"
            outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
            assert outline not in ("", "none")
            page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
            call(watched, "DELETE", f"/jobs/{job}")
        finally:
            browser.close()


def test_a_jobs_progress_and_rate_move_while_it_runs(lone_peer: PeerProcess) -> None:
    """A job left to the peer's own chunking, watched from the start on a fresh peer: its
    progress moves in small steps, the throughput card reads its rate (not "idle") while it
    runs. Everything waited on is a condition on the page, never a stretch of time."""
    from playwright.sync_api import sync_playwright

    peer = lone_peer
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.set_default_timeout(PAGE_WAIT_S * 1000)
            page.goto(f"{peer.url}/?token={peer.token}")
            until(page, f"return {ALIVE_ROWS}.length === 1;")

            # 240 items of about 0.1 s each, the task size the peer's choice (chunk_size unset):
            # many seconds of work, so it is still running when the conditions below hold.
            total = 240
            job = post_job(peer, [PROGRESS_LOOPS] * total, chunk_size=None)
            row = f"document.querySelector('#jobs-body tr[data-key=\"{job}\"]')"
            card = "document.querySelector('#n-latency').textContent"
            until(
                page,
                f"const r = {row}; return !!r && +r.dataset.done > 0"
                f" && +r.dataset.done < {total}"
                " && parseFloat(document.querySelector('#n-rate').textContent) > 0"
                f" && {card}.includes('1 job running') && !{card}.includes('idle');",
            )
            before = int(
                page.locator(f'#jobs-body tr[data-key="{job}"]').get_attribute("data-done") or 0
            )
            moved = f"+r.dataset.done > {before} && +r.dataset.done < {total}"
            finished = f"document.querySelector('#recent-body tr[data-key=\"{job}\"]')"
            until(page, f"const r = {row}; return (!!r && {moved}) || !!{finished};")
            page.screenshot(path=str(ARTIFACTS / "dashboard-progress.png"), full_page=True)

            # The progress moved in small pieces: each delivered piece is at most 1/30 of the job.
            runs = call(peer, "GET", f"/jobs/{job}")["chunks"]
            assert runs and max(run["count"] for run in runs) <= total // 30, runs
            call(peer, "DELETE", f"/jobs/{job}")
        finally:
            browser.close()
