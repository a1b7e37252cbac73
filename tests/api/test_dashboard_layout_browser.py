"""The dashboard's layout in a real browser at a laptop's width (1280 px) and a phone's (390 px).

A real peer serves the page; its snapshots are replaced by one fixed picture of a busy cluster
(four peers, one dead with the load it last reported, jobs in flight and finished, workers,
bundles, five minutes of history), so the layout is checked on the same content every run.
Screenshots are left in ``test-artifacts/dashboard-1280.png`` and ``dashboard-390.png``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ..cluster import PeerProcess
from .test_dashboard_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
    ),
]

SHA_A = "4f563a90627e0eaa1bbde327f8269ef6bfa042ca"
SHA_B = "9c1185a5c5e9fc54612808977ee8f548b2258d31"
KEY = "5d41402abc4b2a76b9719d911017c592"
BLANK = "\N{EN DASH}"  # what the page shows for no figure
DEAD_LOAD = {"tasks_running": 7, "queue_length": 12, "worker_slots_free": 3}


def _peer(port: int, state: str, now: float, **extra: Any) -> dict[str, Any]:
    return {
        "address": f"192.168.100.{port - 7000}:{port}", "url": f"http://192.168.100.1:{port}/",
        "state": state, "self": False, "since": now - 4000, "last_seen": now - 1,
        "incarnation": 2, "load": {"tasks_running": 2, "queue_length": 0, "worker_slots_free": 6},
        "bundles": 2, "version": "0.1.0", **extra,
    }  # fmt: skip


def _job(number: int, now: float, state: str, done: int, total: int) -> dict[str, Any]:
    bundle = {"bundle": SHA_A, "kind": "bundle"} if number % 2 else {"kind": "snippet"}
    finished = {} if state == "running" else {"finished": now - 30 * number, "duration_s": 12.5}
    return {
        "id": f"{number:02d}fbd9c6fe48b4be8", "state": state,
        "progress": {"total": total, "done": done, "failed": 0}, "policy": "least-loaded",
        "created": now - 30 * number - 13, **bundle, **finished,
    }  # fmt: skip


def busy_cluster(now: float) -> dict[str, Any]:
    """A snapshot of a busy four-peer cluster, one peer dead, as ``/dashboard/snapshot`` gives."""
    me = _peer(7001, "alive", now, self=True, last_seen=now)
    peers = [
        me,
        _peer(7002, "alive", now),
        _peer(7003, "suspect", now, last_seen=now - 4),
        _peer(7004, "dead", now, last_seen=now - 40, load=DEAD_LOAD),
    ]
    worker = {"workers": 4, "running": 4, "busy": 3, "restarts": 1, "tasks_done": 12873}
    return {
        "now": now,
        "self": {
            "address": me["address"],
            "url": me["url"],
            "cluster": "production-eu",
            "version": "0.1.0",
            "uptime_s": 86000,
        },
        "peers": peers,
        "workers": [
            {"bundle": SHA_A, "name": "wordcount", "failed": None, **worker},
            {"bundle": SHA_B, "name": "primes", "failed": None, **worker},
        ],
        "bundles": [
            {"sha1": SHA_A, "name": "wordcount", "version": "1.0", "size": 48213, "signer": KEY},
            {"sha1": SHA_B, "name": "primes", "version": "2.3", "size": 2213411, "signer": KEY},
        ],
        "jobs": {
            "in_flight": [_job(1, now, "running", 480, 1200), _job(2, now, "running", 3, 40)],
            "recent": [_job(n, now, "completed", 100, 100) for n in range(3, 9)],
        },
        "series": [[now - 300 + s, 1.5, 1234.5, 85.0, 400.0] for s in range(300)],
        "stats": {"jobs": {"completed": 12873}},
        "unavailable": [],
    }


@pytest.fixture(scope="module")
def page_of_busy_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A signed-in page whose peer's snapshots are all ``busy_cluster``."""
    from playwright.sync_api import sync_playwright

    home = tmp_path_factory.mktemp("layout") / "home"
    home.mkdir()
    peer = PeerProcess(home, log_dir=home.parent).wait_ready()
    snapshot = json.dumps(busy_cluster(time.time()))
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                page.route(
                    "**/dashboard/snapshot",
                    lambda route: route.fulfill(content_type="application/json", body=snapshot),
                )
                page.route(
                    "**/events",
                    lambda route: route.fulfill(
                        content_type="text/event-stream",
                        body=f"retry: 600000\nevent: snapshot\ndata: {snapshot}\n\n",
                    ),
                )
                page.goto(f"{peer.url}/?token={peer.token}")
                page.wait_for_function(
                    "() => document.querySelectorAll('#peers-body tr[data-state]').length === 4"
                )
                yield page
            finally:
                browser.close()
    finally:
        peer.stop()


# Everything the page shows that is wider than the box holding it, and every panel that scrolls
# sideways: what people cannot read without scrolling inside a panel.
OVERFLOWS = """() => {
  const out = [];
  const page = document.documentElement;
  if (page.scrollWidth > page.clientWidth) out.push('page ' + page.scrollWidth);
  for (const el of document.querySelectorAll('.panel, .card, .top')) {
    if (el.scrollWidth > el.clientWidth + 1) out.push((el.id || el.className) + ' '
      + el.scrollWidth + '>' + el.clientWidth + ' ' + el.textContent.trim().slice(0, 40));
  }
  for (const el of document.querySelectorAll('.card .value, .card .sub, .card .label, td, th')) {
    if (el.scrollWidth > el.clientWidth + 1) out.push(el.tagName + ' ' + el.textContent.trim());
  }
  return out;
}"""


def _show(page: Any, width: int, height: int) -> None:
    page.set_viewport_size({"width": width, "height": height})
    page.wait_for_function(f"() => document.documentElement.clientWidth === {width}")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"dashboard-{width}.png"), full_page=True)


def _box(page: Any, selector: str) -> dict[str, float]:
    box = page.locator(selector).first.bounding_box()
    assert box is not None, selector
    return dict(box)


def test_at_1280_px_every_column_is_in_view(page_of_busy_cluster: Any) -> None:
    page = page_of_busy_cluster
    _show(page, 1280, 800)
    assert page.evaluate(OVERFLOWS) == []
    for table in ("#jobs-body", "#recent-body"):
        panel = _box(page, f"section:has({table})")
        last = _box(page, f"table:has({table}) thead th:last-child")
        assert last["x"] + last["width"] <= panel["x"] + panel["width"], table


def test_at_390_px_it_reads_as_one_column_without_sideways_scrolling(
    page_of_busy_cluster: Any,
) -> None:
    page = page_of_busy_cluster
    _show(page, 390, 844)
    assert page.evaluate(OVERFLOWS) == []
    assert _box(page, "header.top")["height"] <= 120
    # The summary cards show their whole figures.
    assert page.locator("#n-rate").inner_text() == "1234.5 items/s"
    # A peer's load and a job's progress are on screen, not behind a scroll inside a panel.
    for selector in ('#peers-body tr[data-state="alive"] td.load', "#jobs-body .bar"):
        box = _box(page, selector)
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, selector


def test_a_dead_peer_shows_no_load_as_current(page_of_busy_cluster: Any) -> None:
    page = page_of_busy_cluster
    dead = page.locator('#peers-body tr[data-state="dead"] td.load')
    assert dead.count() == 3
    assert dead.all_inner_texts() == [BLANK, BLANK, BLANK]
    assert "last reported 7" in (dead.first.get_attribute("title") or "")
    suspect = page.locator('#peers-body tr[data-state="suspect"] td.load')
    assert all("stale" in (c.get_attribute("class") or "") for c in suspect.all())
    alive = page.locator('#peers-body tr[data-state="alive"]:not(.me) td.load')
    assert alive.all_inner_texts() == ["2", "0", "6"]
