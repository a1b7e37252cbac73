"""Bundle throughput: pack and unpack against ``tar --zstd``, and upload + verify + store.

Run: ``.venv/bin/python benchmarks/bench_bundles.py [--mb 100]``. It generates an app tree of about
``--mb`` MB (source-like text and incompressible binaries, seeded, so every run packs the same
bytes), then measures in the same run:

* pack: ``disruptor`` deterministic pack vs ``tar -I 'zstd -3 -T1' -cf`` (same level, one thread);
* unpack: ``disruptor`` safe unpack (all checks, read-only tree) vs ``tar -I 'zstd -d' -xf``;
* verify: the full upload check alone (SHA-1 + SHA-256 + archive decode and tar rules);
* upload: ``PUT /bundles/<sha1>`` to an in-process peer over loopback, through to the stored,
  verified, fsynced bundle.

Each figure is the best of ``--repeat`` runs; ratios are against the tar CLI in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from disruptor.address import Address
from disruptor.bundles.pack import pack_to_file
from disruptor.bundles.settings import BundleSettings
from disruptor.bundles.signing import SignedManifest, load_or_create_key, sign_manifest
from disruptor.bundles.unpack import check_archive, remove_tree, unpack_archive
from disruptor.home import Home
from disruptor.peer import Peer
from disruptor.settings import PeerSettings

WORDS = [
    "def", "return", "import", "class", "self", "value", "items", "for", "in", "if", "else",
    "result", "data", "None", "True", "False", "async", "await", "with", "as", "yield", "lambda",
]  # fmt: skip


def make_tree(root: Path, megabytes: int, seed: int = 7) -> int:
    """About ``megabytes`` MB: 70% text in ~6,000 small files, 30% random in 60 binaries."""
    rng = random.Random(seed)
    root.mkdir(parents=True)
    (root / "bundle.toml").write_text(
        'name = "bench"\nversion = "1.0"\n[worker]\nhandler = "m:f"\n'
    )
    total = 0
    text_bytes = int(megabytes * 0.7 * 1024 * 1024)
    i = 0
    while total < text_bytes:
        lines = [
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12)))
            for _ in range(rng.randint(50, 400))
        ]
        body = ("\n".join(lines) + "\n").encode()
        path = root / f"pkg{i % 40}" / f"mod{i}.py"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(body)
        total += len(body)
        i += 1
    blob_bytes = int(megabytes * 0.3 * 1024 * 1024) // 60
    (root / "assets").mkdir()
    for j in range(60):
        (root / "assets" / f"blob{j}.bin").write_bytes(rng.randbytes(blob_bytes))
        total += blob_bytes
    return total


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children (tar and zstd run as children)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def paired(
    ours: Callable[[], object],
    theirs: Callable[[], object],
    repeat: int,
    reset: Callable[[], None] = lambda: None,
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Best (wall s, CPU s) of each, the two run alternately so they share the machine's load."""
    results: dict[int, list[tuple[float, float]]] = {0: [], 1: []}
    for _ in range(repeat):
        for index, fn in ((0, ours), (1, theirs)):
            reset()
            wall, cpu = time.perf_counter(), _cpu_s()
            fn()
            results[index].append((time.perf_counter() - wall, _cpu_s() - cpu))
    best = {i: (min(w for w, _ in r), min(c for _, c in r)) for i, r in results.items()}
    return best[0], best[1]


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


async def upload_once(peer: Peer, archive: Path, header: str, sha1: str, size: int) -> None:
    async def body() -> object:
        with archive.open("rb") as f:
            while chunk := f.read(1024 * 1024):
                yield chunk

    headers = {
        "Authorization": f"Bearer {peer.api_token}",
        "X-Disruptor-Manifest": header,
        "Content-Length": str(size),
    }
    async with (
        aiohttp.ClientSession() as s,
        s.put(f"{peer.url}/bundles/{sha1}", data=body(), headers=headers) as r,
    ):
        assert r.status == 201, await r.text()


def signed_for(home: Home, archive: Path) -> SignedManifest:
    key, _ = load_or_create_key(home.signing_key_path)
    data = archive.read_bytes()
    app = check_archive(archive, BundleSettings())
    return sign_manifest(
        key,
        sha1=hashlib.sha1(data).hexdigest(),
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        name=app.name,
        version=app.version,
        signed_at=int(time.time()),
    )


async def upload_bench(home: Home, archive: Path, manifest: SignedManifest, repeat: int) -> float:
    peer = Peer(PeerSettings(address=Address("127.0.0.1", 0), home=home.root))
    await peer.start()
    try:
        assert peer.store is not None
        times = []
        for _ in range(repeat):
            if peer.store.has(manifest.sha1):
                peer.store.delete(manifest.sha1)
            start = time.perf_counter()
            await upload_once(peer, archive, manifest.to_header(), manifest.sha1, manifest.size)
            times.append(time.perf_counter() - start)
        return min(times)
    finally:
        await peer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not shutil.which("zstd"):
        sys.exit("needs the zstd CLI for the tar baseline")
    with tempfile.TemporaryDirectory(prefix="bench-bundles-") as tmp:
        work = Path(tmp)
        tree = work / "app"
        raw = make_tree(tree, args.mb)
        ours = work / "ours.tar.zst"
        theirs = work / "tar.tar.zst"
        tar_pack = ["tar", "-I", "zstd -3 -T1", "-cf", str(theirs), "-C", str(tree), "."]
        pack = paired(
            lambda: pack_to_file(tree, ours),
            lambda: subprocess.run(tar_pack, check=True),
            args.repeat,
        )
        out_ours = work / "out-ours"
        out_tar = work / "out-tar"

        def reset() -> None:
            remove_tree(out_ours)
            shutil.rmtree(out_tar, ignore_errors=True)
            out_tar.mkdir()

        limits = BundleSettings()
        tar_unpack = ["tar", "-I", "zstd -d", "-xf", str(theirs), "-C", str(out_tar)]
        unpack = paired(
            lambda: unpack_archive(ours, out_ours, work / "tmp", limits),
            lambda: subprocess.run(tar_unpack, check=True),
            args.repeat,
            reset,
        )

        def verify() -> None:
            data = ours.read_bytes()
            hashlib.sha1(data).hexdigest()
            hashlib.sha256(data).hexdigest()
            check_archive(ours, limits)

        t_verify = best(verify, args.repeat)
        home = Home(work / "home").ensure()
        manifest = signed_for(home, ours)
        t_upload = asyncio.run(upload_bench(home, ours, manifest, args.repeat))
        size = ours.stat().st_size
        mb = raw / 1e6
        entries = sum(1 for _ in tree.rglob("*"))
        tar_mb = theirs.stat().st_size / 1e6
        print(f"tree: {mb:.1f} MB in {entries} entries; bundle {size / 1e6:.1f} MB "
              f"(tar+zstd: {tar_mb:.1f} MB)")  # fmt: skip
        for name, (ours_wall, ours_cpu), (tar_wall, tar_cpu) in (
            ("pack", *pack),
            ("unpack", *unpack),
        ):
            print(f"{name:<7} disruptor {ours_wall:6.2f} s wall ({mb / ours_wall:6.1f} MB/s), "
                  f"{ours_cpu:6.2f} s CPU | tar --zstd {tar_wall:6.2f} s wall "
                  f"({mb / tar_wall:6.1f} MB/s), {tar_cpu:6.2f} s CPU | ratio wall "
                  f"{ours_wall / tar_wall:4.2f}x, CPU {ours_cpu / tar_cpu:4.2f}x")  # fmt: skip
        print(f"verify   {t_verify:6.2f} s ({mb / t_verify:6.1f} MB/s of tree, "
              f"{size / 1e6 / t_verify:6.1f} MB/s of bundle)")  # fmt: skip
        print(f"upload   {t_upload:6.2f} s ({size / 1e6 / t_upload:6.1f} MB/s of bundle over "
              f"loopback, verified, fsynced, stored)")  # fmt: skip


if __name__ == "__main__":
    main()
