"""The help text of every metric the peer exports from its parts' stats: what is counted, in what.

``metrics.py`` turns each field of a part's stats dataclass into a metric; this says what the
field's number means, for the ``# HELP`` line people read in Prometheus and Grafana. Rule: a
counter's text names the things counted (its unit, with ``_total`` after the name); a gauge's
names what it is a level of and its unit (items, workers, bytes). A part may instead give its own
with ``field(metadata={"help": ...})``; a field found in neither gets a plain fallback, and
``tests/test_metrics.py`` fails on a real peer's exposition until it has its text here.
"""

from __future__ import annotations

# (part as exported, stats field) -> help text.
HELP: dict[tuple[str, str], str] = {
    # Membership (SWIM gossip over UDP).
    ("membership", "probes"): "Direct probes (UDP pings) sent to other peers",
    ("membership", "probes_failed"): "Probes answered neither directly nor through other peers",
    ("membership", "suspicions"): "Peers this peer started to suspect of having failed",
    ("membership", "refutations"): "Suspicions of this peer it refuted by raising its incarnation",
    ("membership", "deaths_declared"): "Suspected peers this peer declared dead",
    ("membership", "absurd_incarnations"): (
        "Gossip about this peer with an incarnation it never had (ignored)"
    ),
    ("membership", "push_pulls"): "Full member-table exchanges (push-pull over HTTP) completed",
    ("membership", "push_pulls_failed"): "Push-pull exchanges that failed (peer unreachable)",
    ("membership", "push_pulls_hash_only"): (
        "Periodic push-pulls settled by comparing member-table hashes alone"
    ),
    ("membership", "fast_syncs"): "Member-table syncs done at once after a change",
    ("membership", "section_fetches"): "Member-table sections fetched from another peer",
    ("membership", "section_fetches_failed"): "Member-table section fetches that failed",
    ("membership", "datagrams_in"): "Gossip datagrams received (UDP)",
    ("membership", "datagrams_out"): "Gossip datagrams sent (UDP)",
    ("membership", "gossip_bytes_in"): "Bytes of gossip datagrams received",
    ("membership", "gossip_bytes_out"): "Bytes of gossip datagrams sent",
    ("membership", "dropped"): (
        "Gossip datagrams dropped, by reason (truncated, oversized, version, auth, malformed, "
        "incarnation, replay, clock, rate_limited, self)"
    ),
    # Bundle store and peer-to-peer fetches.
    ("bundles", "uploads"): "Bundles stored for the first time, by upload or fetch",
    ("bundles", "uploads_duplicate"): "Uploads of a bundle this peer already held",
    ("bundles", "verify_failures"): "Bundles refused on their digest or signature",
    ("bundles", "bytes_received"): "Bytes of bundle uploads received",
    ("bundles", "unpacks"): "Bundles unpacked for their workers",
    ("bundles", "fetches"): "Bundles fetched from other peers",
    ("bundles", "fetch_failures"): "Bundle fetches from other peers that failed",
    ("bundles", "fetch_resumes"): "Bundle transfers continued with a byte range after a break",
    ("bundles", "bytes_fetched"): "Bytes of bundles fetched from other peers",
    ("bundles", "deletes"): "Bundles deleted",
    ("bundles", "disk_full_refusals"): (
        "Writes abandoned because the disk was full (uploads, fetches, unpacks)"
    ),
    ("bundles", "uploads_refused_busy"): (
        "Uploads refused before their body: too many at once, or file descriptors short"
    ),
    ("bundles", "uploads_broken"): "Uploads whose body broke off (client gone, or too slow)",
    # Worker pool (bundle workers).
    ("workers", "workers_running"): "Bundle worker processes running now (workers)",
    ("workers", "workers_started"): "Bundle worker processes started, restarts included",
    ("workers", "restarts"): "Bundle worker processes restarted after dying",
    ("workers", "crashes"): "Bundle worker processes that died other than by a task timeout",
    ("workers", "timeouts"): "Worker calls that ran past their timeout (the worker was replaced)",
    ("workers", "protocol_errors"): "Workers stopped for breaking the worker protocol",
    ("workers", "calls_done"): "Calls answered by workers (one call carries one or more chunks)",
    ("workers", "tasks_done"): "Items answered by workers (a value or the handler's error)",
    ("workers", "tasks_failed"): "Items run by workers that ended in an error of any kind",
    ("workers", "queue_items"): "Items waiting in the pool's queues for a free worker (items)",
    ("workers", "bundles_failed"): "Bundles whose workers failed to start and were given up",
    ("workers", "overloaded_refusals"): (
        "Chunks refused because their bundle's queue was full (answered 429)"
    ),
    ("workers", "chunks_done"): "Chunks of items answered by workers",
    ("workers", "chunks_batched"): "Chunks that shared a worker call with the one before them",
    ("workers", "chunks_split"): ("Chunks cut to spread over idle workers or to fit in one frame"),
    ("workers", "workers_v2"): "Bundle workers running now that speak protocol version 2",
    # Snippet engine (sandboxed hosts).
    ("snippets", "runs"): "Chunks of items run through snippets",
    ("snippets", "items"): "Items run through snippets (a value or an error)",
    ("snippets", "items_failed"): "Items run through snippets that ended in an error",
    ("snippets", "budget_stops"): "Items stopped for going past a snippet budget",
    ("snippets", "rejected"): "Snippets refused: they do not compile under the sandbox",
    ("snippets", "stored"): "Snippet sources stored on this peer since it started",
    ("snippets", "compile_cache_hits"): "Snippet runs whose compiled code was cached in the host",
    ("snippets", "compile_cache_misses"): "Snippet runs that compiled their snippet first",
    ("snippets", "hosts_started"): "Snippet host processes started",
    ("snippets", "hosts_running"): "Snippet host processes running now (hosts)",
    ("snippets", "batches_running"): "Chunks being run by snippet hosts now (chunks)",
    ("snippets", "watchdog_kills"): "Snippet hosts killed for outliving an item's budget",
    ("snippets", "host_deaths"): "Snippet hosts that died in the middle of a chunk",
    ("snippets", "protocol_errors"): "Snippet hosts killed for sending what is not a frame",
    ("snippets", "parts"): "Reply parts received from snippet hosts (a chunk comes in one or more)",
    ("snippets", "hosts_expired"): "Snippet hosts stopped after staying idle",
    # Jobs coordinated here, and tasks served for other coordinators.
    ("jobs", "submitted"): "Jobs submitted to this peer, which coordinated them",
    ("jobs", "completed"): "Jobs coordinated here that completed",
    ("jobs", "failed"): "Jobs coordinated here that failed (fail_fast)",
    ("jobs", "cancelled"): "Jobs coordinated here that were cancelled",
    ("jobs", "running"): "Jobs coordinated here running now (jobs)",
    ("jobs", "items_completed"): "Items of finished jobs coordinated here whose result is a value",
    ("jobs", "items_failed"): "Items of finished jobs coordinated here whose result is an error",
    ("jobs", "items_retried"): "Items run again alone after their worker crashed or timed out",
    ("jobs", "tasks_local"): "Task attempts this coordinator ran on itself",
    ("jobs", "tasks_forwarded"): "Task attempts this coordinator sent to other peers",
    ("jobs", "tasks_replaced"): "Task attempts placed again after their peer was lost",
    ("jobs", "tasks_served"): "Task attempts other coordinators ran on this peer",
    ("jobs", "tasks_serving"): "Task attempts for other coordinators running here now (tasks)",
    ("jobs", "rejected_overloaded"): "Jobs and tasks refused because too many were running",
    ("jobs", "latency"): "Time from a job's submission to its end, for jobs coordinated here",
}


def help_text(part: str, field: str) -> str | None:
    """The help text of a part's stats field, if one is written down."""
    return HELP.get((part, field))
