"""``disruptor demo``: a three-peer cluster on this machine, a bundle deployed, a job run.

It starts three peers as separate processes on free loopback ports (in a fresh temporary data
directory unless ``--home`` is given), packs, signs and pushes the ``wordcount`` example bundle,
starts its workers on every peer, counts the words of each sentence of the Gettysburg Address as
one job, and prints each result with the peer it ran on and the status page's address. ``--keep``
leaves the cluster up until Ctrl-C. Rule: whatever happens, the peers it started are stopped
(SIGTERM, then SIGKILL) and a temporary data directory is removed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..client import Client
from ..errors import PeerUnreachable
from ..home import Home
from ..ports import free_port

PEERS = 3
READY_TIMEOUT_S = 30.0
MEMBERSHIP_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
TEXT = "gettysburg-address.txt"


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "demo",
        help="start a local 3-peer cluster and run wordcount on it",
        description="Start three local peers, push the wordcount bundle, start workers on all "
        "peers, count the words of the Gettysburg Address sentence by sentence, and print where "
        "each sentence ran. Cleans up after itself.",
    )
    parser.add_argument("--keep", action="store_true", help="keep the cluster up until Ctrl-C")
    parser.add_argument("--home", type=Path, help="data directory (default: a temporary one)")
    parser.add_argument("--policy", default="round-robin", help="placement policy for the job")
    parser.set_defaults(func=run)


def example_path(*parts: str) -> Path:
    """A file shipped for the demo: ``bundles/`` of a source checkout, else the installed copy."""
    package = Path(__file__).resolve().parent.parent
    if parts[0] == "bundles":
        checkout = package.parent / "bundles"
        root = checkout if (checkout / parts[1]).is_dir() else package / "examples"
        return root.joinpath(*parts[1:])
    return package.joinpath(*parts)


class LocalCluster:
    """Peers as child processes sharing one data directory; ``stop`` always reaps them."""

    def __init__(self, home: Path, count: int) -> None:
        self.home = home
        self.count = count
        self.procs: list[subprocess.Popen[bytes]] = []
        self.addresses: list[str] = []
        self.logs: list[Path] = []

    def start(self) -> None:
        env = {**os.environ, "DISRUPTOR_HOME": str(self.home)}
        log_dir = self.home / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        for number in range(self.count):
            address = f"127.0.0.1:{free_port()}"
            seeds = self.addresses[:1]
            log_path = log_dir / f"peer-{number}.log"
            with log_path.open("wb") as log:
                self.procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "disruptor", "peer", address, *seeds],
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,  # Ctrl-C reaches us; we stop them in order
                    )
                )
            self.addresses.append(address)
            self.logs.append(log_path)
        for proc, address, log_path in zip(self.procs, self.addresses, self.logs, strict=True):
            self._wait_ready(proc, address, log_path)

    def _wait_ready(self, proc: subprocess.Popen[bytes], address: str, log_path: Path) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise PeerUnreachable(f"peer {address} exited at start:\n{tail}")
            if _healthy(address):
                return
            time.sleep(0.1)
        raise PeerUnreachable(f"peer {address} did not answer within {READY_TIMEOUT_S:.0f}s")

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _healthy(address: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{address}/health", timeout=1) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


@contextlib.contextmanager
def demo_home(given: Path | None) -> Iterator[Path]:
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        yield given
        return
    root = Path(tempfile.mkdtemp(prefix="disruptor-demo-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def wait_for_members(client: Client, count: int) -> int:
    """Wait (bounded) until the first peer sees ``count`` live peers; how many it sees."""
    deadline = time.monotonic() + MEMBERSHIP_TIMEOUT_S
    seen = 1
    while time.monotonic() < deadline:
        seen = len(client.request_json("GET", "/jobs", params={"results": "false"})["peers"])
        if seen >= count:
            break
        time.sleep(0.2)
    return seen


def run(args: argparse.Namespace) -> int:
    sentences = [
        line.strip()
        for line in example_path("texts", TEXT).read_text().splitlines()
        if line.strip()
    ]
    with demo_home(args.home) as root:
        cluster = LocalCluster(root, PEERS)
        try:
            print(f"starting {PEERS} peers (data directory {root})", flush=True)
            cluster.start()
            for address in cluster.addresses:
                print(f"  peer {address}", flush=True)
            with Client(cluster.addresses, home=Home(root)) as client:
                seen = wait_for_members(client, PEERS)
                print(f"the first peer sees {seen} live peer(s)", flush=True)
                pushed = client.push_bundle(example_path("bundles", "wordcount"), home=Home(root))
                sha1 = pushed.sha1
                print(f"pushed bundles/wordcount as {sha1}", flush=True)
                started = client.request_json(
                    "POST", "/workers", json_body={"bundle": sha1, "peers": "all"}
                )
                print(f"workers started on {len(_peers_of(started))} peer(s)", flush=True)
                outcomes = client.outcomes(sha1, sentences, policy=args.policy, chunk_size=1)
                _report(sentences, outcomes)
                print(f"\nstatus page: http://{cluster.addresses[0]}/", flush=True)
                if args.keep:
                    print("the cluster stays up; Ctrl-C to stop it", flush=True)
                    with contextlib.suppress(KeyboardInterrupt):
                        while all(p.poll() is None for p in cluster.procs):
                            time.sleep(0.5)
        finally:
            cluster.stop()
            print("peers stopped", flush=True)
    return 0


def _peers_of(answer: Any) -> list[str]:
    """The peers where workers started; those that failed are printed with their reason."""
    started = []
    peers = answer.get("peers") if isinstance(answer, dict) else None
    for address, reply in (peers or {}).items():
        if isinstance(reply, dict) and "error" in reply:
            print(f"  workers did not start on {address}: {reply['error'].get('detail')}")
        else:
            started.append(address)
    return started


def _report(sentences: list[str], outcomes: list[Any]) -> None:
    print(f"\n{'#':>2}  {'words':>5}  {'unique':>6}  {'peer':<21}  sentence")
    where: Counter[str] = Counter()
    total = 0
    for number, (sentence, outcome) in enumerate(zip(sentences, outcomes, strict=True), 1):
        where[outcome.peer or "?"] += 1
        if outcome.error is not None:
            print(f"{number:>2}  error: {outcome.error.type}: {outcome.error.message}")
            continue
        value = outcome.value if isinstance(outcome.value, dict) else {}
        words, unique = value.get("total", "?"), value.get("unique", "?")
        total += words if isinstance(words, int) else 0
        short = sentence if len(sentence) <= 48 else sentence[:45] + "..."
        print(f"{number:>2}  {words!s:>5}  {unique!s:>6}  {outcome.peer or '?':<21}  {short}")
    print(f"\n{total} words in {len(sentences)} sentences")
    for peer, count in sorted(where.items()):
        print(f"  {count:>2} sentence(s) ran on {peer}")
