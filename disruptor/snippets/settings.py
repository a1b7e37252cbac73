"""The ``[snippets]`` section of a peer's settings: the sandbox's limits, its hosts, its store.

Plain data with no import of the sandbox itself, so a peer reads its settings without loading
RestrictedPython (only the host processes need it).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SnippetSettings:
    """Limits of the snippet sandbox (the ``[snippets]`` section of the peer's settings)."""

    # Source is refused before compiling past this size: the compiler's own time and memory
    # grow with its input, and a snippet is meant to be small.
    source_bytes_max: int = 64 * 1024
    # Default and largest wall-clock budget for one item (and for the snippet's top level).
    item_timeout_s: float = 5.0
    item_timeout_s_max: float = 300.0
    # The watchdog kills a host this long after an item's budget ran out without a reply; the
    # in-process budget normally stops the item well before that.
    watchdog_grace_s: float = 1.0
    # Address space of one host process; every allocation past it fails with MemoryError.
    memory_mb: int = 512
    # Host processes that run snippets; each runs one batch at a time.
    hosts_max: int = 2
    # Hosts started with the peer so that the first snippet does not wait for one. None by
    # default: a host starts on first use (about 0.1 s, once) and an idle peer holds none.
    hosts_prestart: int = 0
    # A host idle this long is stopped (0: never), so a peer that ran snippets once and went
    # quiet gives the memory back; the next snippet starts a fresh one.
    hosts_idle_s: float = 300.0
    # Batches waiting for a host past this count are refused with 429.
    waiting_max: int = 256
    # Largest string, bytes or list a checked operator may build, and largest range.
    sequence_items_max: int = 10_000_000
    # Largest integer a checked operator may build, in bits (about 300,000 decimal digits).
    int_bits_max: int = 1_000_000
    # Text ``print`` may collect in one run.
    output_bytes_max: int = 64 * 1024
    # One item's result as JSON.
    result_bytes_max: int = 8 * 1024 * 1024
    # Call depth (Python frames) a snippet may reach.
    recursion_depth_max: int = 500
    # Compiled snippets kept per host (LRU by SHA-1).
    compile_cache_max: int = 256
    # Stored snippets (``PUT /snippets/<sha1>``) per peer; the least recently used go first.
    store_count_max: int = 1000
