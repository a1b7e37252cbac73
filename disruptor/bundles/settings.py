"""Named limits on bundles: how big an upload, an archive and its unpacked tree may be.

Rule: every byte a peer accepts from outside is counted against one of these before it costs
memory or disk, so a hostile bundle is refused early instead of filling the machine. The peer's
``PeerSettings.bundles`` section carries them.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True)
class BundleSettings:
    # Largest compressed bundle a PUT may send (the body is counted as it streams in).
    upload_bytes_max: int = 1024 * MIB
    # Uploads in progress at once, in all and per client address: each holds a socket, a
    # temporary file and its disk space; past either, a PUT is answered 503 with Retry-After.
    uploads_max: int = 32
    uploads_per_client_max: int = 4
    # Sum of the sizes of all files in one unpacked bundle.
    unpacked_bytes_max: int = 4096 * MIB
    # Largest single file inside a bundle.
    file_bytes_max: int = 1024 * MIB
    # Entries (files and directories) in one bundle.
    file_count_max: int = 200_000
    # One path inside the archive, in UTF-8 bytes, and its depth.
    path_bytes_max: int = 4096
    path_depth_max: int = 64
    # Memory the archive check may spend remembering names (duplicates, case collisions): 112
    # bytes per distinct path, 160 if its spelling is not its case-folded form, so 32 MiB admits
    # the entry limit's worth of paths however they are spelled. With the zstd window and the
    # buffers, a scan stays under 64 MiB.
    names_bytes_max: int = 32 * MIB
    # The zstd window a decoder may allocate: 16 MiB covers every standard level, 1 to 19
    # (``disruptor pack`` uses 3, with a 2 MiB window); ``--ultra`` levels and ``--long`` are
    # refused.
    zstd_window_bytes_max: int = 16 * MIB
    # The signed manifest sent with an upload (a few hundred bytes in practice).
    manifest_bytes_max: int = 16 * 1024
    # How long a fetch from another peer may take before it is given up.
    fetch_timeout_s: float = 600.0
