"""The worker pool's settings (``PeerSettings.workers``), each default explained where it is set."""

from __future__ import annotations

from dataclasses import dataclass

from .framing import FRAME_BYTES_MAX, LINE_BYTES_MAX
from .messages import V2


@dataclass(frozen=True)
class WorkerSettings:
    # "auto": bubblewrap when ``bwrap`` is installed (Linux), else plain; "bwrap" insists on it
    # (workers fail to start without it); "plain": process group, rlimits, dedicated uid only.
    isolation: str = "auto"
    # When the peer runs as root, each worker runs as its own uid drawn from this range (no
    # passwd entry needed). A dedicated uid makes the process limit exact, keeps workers from
    # signalling each other, and lets a stop kill everything that uid runs.
    worker_uid_base: int = 2_000_000_000
    worker_uid_count: int = 1 << 24
    # Interpreter for ``handler`` bundles; empty means the one running the peer.
    python: str = ""
    # From spawn to the worker's ready line; a worker that stays silent longer is killed.
    ready_timeout_s: float = 30.0
    # From a shutdown message to the worker's exit, before it is killed.
    drain_timeout_s: float = 10.0
    # Items waiting for a worker on one bundle; beyond this a request is refused with 429.
    queue_items_max: int = 100_000
    # Items that several waiting chunks may total to travel in one call to a worker (a single
    # chunk always travels whole): amortises the round trip of many small jobs without making
    # one call hold a worker much longer than its largest chunk would.
    batch_items_max: int = 10_000
    # Restart backoff after a crash: doubles from initial to max, with jitter.
    restart_backoff_initial_s: float = 0.1
    restart_backoff_max_s: float = 10.0
    # This many crashes within the window mark the bundle failed instead of restarting for ever.
    crash_loop_crashes: int = 5
    crash_loop_window_s: float = 60.0
    # Lines of a worker's stderr kept for error messages (each cut to stderr_line_chars_max).
    stderr_lines_kept: int = 20
    stderr_line_chars_max: int = 500
    # Warm workers one bundle may have on one peer.
    workers_per_bundle_max: int = 64
    # A worker's private /tmp under bubblewrap is a tmpfs of this size (it is memory).
    tmp_bytes_max: int = 64 * 1024 * 1024
    # A worker's scratch directory: the manifest's ``[limits] scratch_mb``, or this default; a
    # bundle asking more than the maximum does not start here. Under bubblewrap the scratch is a
    # tmpfs of that size (memory, like /tmp); otherwise a directory the peer measures every
    # interval. A worker that fills it is killed and its items fail with ``scratch-full``.
    scratch_mb_default: int = 256
    scratch_mb_max: int = 4096
    scratch_check_interval_s: float = 0.5
    # The largest line (protocol version 1) and frame (version 2) accepted from a worker, and
    # written to one (a larger call is split; an item too large alone fails).
    line_bytes_max: int = LINE_BYTES_MAX
    frame_bytes_max: int = FRAME_BYTES_MAX
    # The highest worker protocol version to switch to when a worker offers it; 1 keeps every
    # worker on NDJSON (for a worker that offers version 2 but cannot keep to it).
    protocol_max: int = V2
