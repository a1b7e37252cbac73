"""A worker filling its scratch, with real processes: stopped at its quota, its item failing with
``scratch-full``, and a fresh, empty scratch for the next item; in both isolation modes."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import MODES

# The reported worker: it keeps writing big files into its scratch. Here 1 MiB files, one every
# 20 ms (as a worker producing results does), up to 200 MiB, against a quota of 8 MiB.
FILLER = {
    "app.py": """\
    import os, time
    def handle(item):
        scratch = os.environ["WORKER_SCRATCH_DIR"]
        if item == "count":
            return sum(len(files) for _, _, files in os.walk(scratch))
        chunk = b"x" * (1 << 20)
        for i in range(200):
            with open(os.path.join(scratch, f"part{i}.bin"), "wb") as f:
                f.write(chunk)
            time.sleep(0.02)
        return "wrote 200 MiB"
    """
}


@pytest.mark.parametrize("mode", MODES)
async def test_a_worker_filling_its_scratch_is_stopped_and_its_item_fails_scratch_full(
    make_pool: Any, mode: str
) -> None:
    pool, bundles = await make_pool(mode, scratch_check_interval_s=0.1)
    sha1 = bundles.add("filler", FILLER, limits="scratch_mb = 8")
    (outcome,) = await pool.run_batch(sha1, ["fill"])
    assert outcome.error is not None, outcome.value
    assert outcome.error.kind == "scratch-full" and outcome.error.type == "ScratchFull"
    assert "8 MiB" in outcome.error.message
    # Not retried (it would fill the next scratch too): one stop, then a fresh worker whose
    # scratch is empty.
    (count,) = await pool.run_batch(sha1, ["count"])
    assert count.value == 0, count.error
    assert pool.stats.restarts == 1


async def test_a_bundle_asking_more_scratch_than_the_peer_allows_does_not_start(
    make_pool: Any,
) -> None:
    pool, bundles = await make_pool("plain", scratch_mb_max=64)
    sha1 = bundles.add("greedy", {"app.py": "def handle(x):\n    return x\n"},
                       limits="scratch_mb = 65")  # fmt: skip
    (outcome,) = await pool.run_batch(sha1, [1])
    assert outcome.error is not None and "asks for 65 MiB of scratch" in outcome.error.message
