"""Hostile bundles and hostile uploaders at full size, where CI runs them scaled down.

Run one or both:

    .venv/bin/python benchmarks/chaos_bundles.py archive-scan
    .venv/bin/python benchmarks/chaos_bundles.py slow-uploads [--uploads 9900]

``archive-scan`` builds archives whose names are made to cost the name check memory and time,
each at the entry limit (200,000 entries), and scans each in a fresh process with
``check_archive``, reporting the outcome, how far the process's peak resident memory grew, and
the time; an ordinary archive of 200,000 entries is the baseline of the same run.
(``tests/bundles/test_unpack_functional.py`` runs the first shape at 8,000 entries in CI.)

``slow-uploads`` starts a real peer process with its default settings and sends it ``--uploads``
signed ``PUT``s of ``Content-Length: 1 GiB`` from 127.0.0.1, each a byte every 5 s, never reading
an answer, while a client on 127.0.0.2 asks ``/health`` and ``/peers`` ten times a second. It
reports the peer's descriptors and memory before, at the peak and after, what the uploaders were
told, and the probes' latency before the flood and during it (same run).
(``tests/api/test_slow_upload_flood_functional.py`` runs 300 of them against 400 descriptors.)
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import zstandard

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from disruptor.bundles.signing import load_or_create_key, sign_manifest  # noqa: E402
from disruptor.ports import free_port  # noqa: E402

MANIFEST = b'name = "demo"\nversion = "1.0"\n\n[worker]\nhandler = "demo:handle"\n'
ENTRIES = 200_000


# --- archive-scan -------------------------------------------------------------------------------


def _header(name: bytes, size: int = 0, typeflag: bytes = b"0") -> bytes:
    block = bytearray(512)
    block[0 : len(name)] = name
    block[100:108] = b"0000644\0"
    block[108:116] = b"0000000\0"
    block[116:124] = b"0000000\0"
    block[124:136] = f"{size:011o}".encode() + b"\0"
    block[136:148] = b"00000000000\0"
    block[148:156] = b" " * 8
    block[156:157] = typeflag
    block[257:265] = b"ustar\x0000"
    block[148:156] = f"{sum(block):06o}".encode() + b"\0 "
    return bytes(block)


def _member(name: bytes, data: bytes = b"") -> bytes:
    return _header(name, len(data)) + data + b"\0" * (-len(data) % 512)


def _pax_path(path: str) -> bytes:
    text = f" path={path}\n".encode()
    length = len(text) + len(str(len(text)))
    length += len(str(length)) - len(str(len(text)))
    body = str(length).encode() + text
    return _header(b"././@PaxHeader", len(body), b"x") + body + b"\0" * (-len(body) % 512)


def deep_long_names(entries: int) -> Iterator[bytes]:
    """The reported shape: every entry 62 levels of 63-character parts never seen before."""
    yield _member(b"bundle.toml", MANIFEST)
    for i in range(entries):
        name = "/".join(f"{i:07d}{level:02d}".ljust(63, "p") for level in range(62))
        yield _pax_path(name) + _member(b"placeholder")


def cycling_deep_directories(entries: int) -> Iterator[bytes]:
    """Files spread over 1,200 directories 63 levels deep, visited in turn: every entry's parent
    misses the check's cache of recent directories, so each costs a walk of its whole path."""
    yield _member(b"bundle.toml", MANIFEST)
    dirs = ["/".join(f"d{j}x{level}".ljust(60, "p") for level in range(63)) for j in range(1200)]
    for i in range(entries):
        yield _pax_path(f"{dirs[i % len(dirs)]}/f{i}") + _member(b"placeholder")


def ordinary(entries: int) -> Iterator[bytes]:
    """The baseline: what ``disruptor pack`` writes for a big tree, directories first."""
    yield _member(b"bundle.toml", MANIFEST)
    left = entries - 1
    for d in range(left // 500 + 1):
        if left <= 0:
            return
        yield _header(f"pkg{d:04d}/".encode(), 0, b"5")
        files = min(499, left - 1)
        left -= files + 1
        for f in range(files):
            yield _member(f"pkg{d:04d}/module_{f:03d}.py".encode())


def big_window_mixed_case(entries: int) -> Iterator[bytes]:
    """The largest zstd window allowed, filled (18 MiB of data), then mixed-case names, whose
    spellings the check must remember, up to the entry limit: the most memory an archive can
    ask for."""
    yield _member(b"bundle.toml", MANIFEST)
    yield _member(b"big.bin", os.urandom(18 * 1024 * 1024))
    for d in range((entries - 2) // 500):
        yield _header(f"Pkg{d:04d}/".encode(), 0, b"5")
        for f in range(499):
            yield _member(f"Pkg{d:04d}/Module_{f:03d}.PY".encode())


# label -> (shape, zstd window log: 24 is the 16 MiB the peer allows)
SHAPES = {
    "ordinary names (baseline)": (ordinary, 21),
    "deep long new names (the report's shape)": (deep_long_names, 21),
    "deep directories visited in turn": (cycling_deep_directories, 21),
    "16 MiB window filled, then mixed-case names": (big_window_mixed_case, 24),
}

SCAN = """
import json, sys, time
from pathlib import Path
from disruptor.bundles.settings import BundleSettings
from disruptor.bundles.unpack import check_archive
from disruptor.errors import DisruptorError
def peak_kib():
    # VmHWM: this process's own peak (ru_maxrss would start from the parent's at fork).
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
before = peak_kib()
start = time.perf_counter()
try:
    check_archive(Path(sys.argv[1]), BundleSettings())
    outcome = "accepted"
except DisruptorError as exc:
    outcome = exc.slug + ": " + exc.detail[:90]
after = peak_kib()
print(json.dumps({"outcome": outcome, "grew_mib": (after - before) / 1024,
                  "seconds": time.perf_counter() - start}))
"""


def archive_scan(entries: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for label, (shape, window_log) in SHAPES.items():
            path = Path(tmp) / "a.tar.zst"
            params = zstandard.ZstdCompressionParameters.from_level(3, window_log=window_log)
            compressor = zstandard.ZstdCompressor(compression_params=params)
            with path.open("wb") as f, compressor.stream_writer(f) as out:
                for block in shape(entries):
                    out.write(block)
                out.write(b"\0" * 1024)
            done = subprocess.run(
                [sys.executable, "-c", SCAN, str(path)],
                capture_output=True,
                text=True,
                cwd=ROOT,
                check=True,
            )
            result = json.loads(done.stdout)
            print(
                f"{label}: {entries} entries, {path.stat().st_size / 1e6:.2f} MB compressed: "
                f"{result['outcome']}; peak memory +{result['grew_mib']:.0f} MiB; "
                f"{result['seconds']:.1f} s"
            )


# --- slow-uploads -------------------------------------------------------------------------------


def descriptors_of(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def slow_put(address: tuple[str, int], head: bytes, told: list[str]) -> None:
    try:
        reader, writer = await asyncio.open_connection(*address)
    except OSError as exc:
        told.append(f"connect failed: {exc.strerror}")
        return
    answer = b""
    try:
        writer.write(head)
        while True:
            try:
                chunk = await asyncio.wait_for(reader.read(4096), 5.0)
            except TimeoutError:
                writer.write(b"x")
                await writer.drain()
                continue
            if not chunk:
                break
            answer += chunk
    except ConnectionError:
        pass
    finally:
        writer.close()
    told.append(answer.split(b"\r\n", 1)[0].decode(errors="replace") or "cut, no answer")


async def probe(
    url: str, token: str, stop: asyncio.Event, samples: list[tuple[str, float]]
) -> None:
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0), force_close=True)
    auth = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=5)
    ) as http:
        while not stop.is_set():
            for path, headers in (("/health", {}), ("/peers", auth)):
                start = time.perf_counter()
                try:
                    async with http.get(url + path, headers=headers) as r:
                        outcome = str(r.status)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    outcome = f"{type(exc).__name__} {exc}"[:120]
                samples.append((outcome, time.perf_counter() - start))
            await asyncio.sleep(0.1)


def descriptor_limit(pid: int) -> int:
    with open(f"/proc/{pid}/limits") as f:
        return int(f.read().split("Max open files")[1].split()[0])


def slow_uploads(uploads: int, hold_s: float) -> None:
    """Start a real peer process with its defaults, flood it, report."""
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        port = free_port()
        with open(Path(tmp) / "peer.log", "wb") as log:
            peer = subprocess.Popen(
                [sys.executable, "-m", "disruptor", "peer", f"127.0.0.1:{port}"],
                env={**os.environ, "DISRUPTOR_HOME": str(home)},
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
            try:
                asyncio.run(flood(peer.pid, port, home, uploads, hold_s))
            finally:
                peer.terminate()
                peer.wait(30)


async def flood(pid: int, port: int, home: Path, uploads: int, hold_s: float) -> None:
    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:
        for _ in range(200):  # until the peer serves (bounded)
            try:
                async with http.get(url + "/health") as r:
                    if r.status == 200:
                        break
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
    token = (home / "api.token").read_text().strip()
    key, _ = load_or_create_key(home / "keys" / "signing.key")
    sha1 = hashlib.sha1(b"never sent").hexdigest()
    manifest = sign_manifest(
        key,
        sha1=sha1,
        sha256=hashlib.sha256(b"never sent").hexdigest(),
        size=1024**3,
        name="demo",
        version="1.0",
        signed_at=1_700_000_000,
    )
    head = (
        f"PUT /bundles/{sha1} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: {1024**3}\r\n"
        f"X-Disruptor-Manifest: {manifest.to_header()}\r\n\r\n"
    ).encode()
    fds0, rss0 = descriptors_of(pid), rss_mib(pid)
    stop = asyncio.Event()
    quiet: list[tuple[str, float]] = []
    prober = asyncio.create_task(probe(url, token, stop, quiet))
    await asyncio.sleep(5)  # the baseline phase
    stop.set()
    await prober
    stop = asyncio.Event()
    flooded: list[tuple[str, float]] = []
    prober = asyncio.create_task(probe(url, token, stop, flooded))
    told: list[str] = []
    started = time.perf_counter()
    attackers = [
        asyncio.create_task(slow_put(("127.0.0.1", port), head, told)) for _ in range(uploads)
    ]
    peak_fds, peak_rss = fds0, rss0
    while time.perf_counter() - started < hold_s:
        peak_fds = max(peak_fds, descriptors_of(pid))
        peak_rss = max(peak_rss, rss_mib(pid))
        await asyncio.sleep(0.2)  # sampling interval
    await asyncio.gather(*attackers)
    stop.set()
    await prober
    ended = time.perf_counter() - started
    for _ in range(300):  # descriptors come back (bounded wait)
        if descriptors_of(pid) <= fds0 + 4:
            break
        await asyncio.sleep(0.1)
    fds1, rss1 = descriptors_of(pid), rss_mib(pid)

    def latency(samples: list[tuple[str, float]]) -> str:
        ok = [s for o, s in samples if o == "200"]
        failed = sorted({o for o, _ in samples if o != "200"})
        if not ok:
            return f"all {len(samples)} failed: {failed}"
        return (
            f"{len(ok)} answered 200, {len(samples) - len(ok)} failed {failed}; median "
            f"{statistics.median(ok) * 1000:.1f} ms, max {max(ok) * 1000:.1f} ms"
        )

    tally = sorted({t: told.count(t) for t in told}.items(), key=lambda kv: -kv[1])
    print(
        f"{uploads} slow PUTs (1 byte / 5 s, Content-Length 1 GiB), peer descriptor limit "
        f"{descriptor_limit(pid)}"
    )
    print(f"  uploaders told: {tally}; all ended after {ended:.0f} s")
    print(f"  peer descriptors: {fds0} before, peak {peak_fds}, {fds1} after")
    print(f"  peer memory: {rss0:.0f} MiB before, peak {peak_rss:.0f} MiB, {rss1:.0f} MiB after")
    print(f"  probes from 127.0.0.2 before the flood: {latency(quiet)}")
    print(f"  probes from 127.0.0.2 during the flood: {latency(flooded)}")
    ok_quiet = [s for o, s in quiet if o == "200"]
    ok_flood = [s for o, s in flooded if o == "200"]
    if ok_quiet and ok_flood:
        ratio = statistics.median(ok_flood) / statistics.median(ok_quiet)
        print(f"  median probe latency, flood vs quiet: {ratio:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    scan = sub.add_parser("archive-scan")
    scan.add_argument("--entries", type=int, default=ENTRIES)
    flood = sub.add_parser("slow-uploads")
    flood.add_argument("--uploads", type=int, default=9900)
    flood.add_argument("--hold-s", type=float, default=40.0, help="how long to watch the peak")
    args = parser.parse_args()
    if args.what == "archive-scan":
        archive_scan(args.entries)
    else:
        slow_uploads(args.uploads, args.hold_s)


if __name__ == "__main__":
    main()
