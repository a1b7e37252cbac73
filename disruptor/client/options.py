"""A job's options as the client takes them: ``JobOptions``, the ``**options`` of every job call.

A ``TypedDict`` unpacked into keyword arguments (``**options: Unpack[JobOptions]``), so a type
checker refuses a misspelt option (``polcy=``) or a value of the wrong type where it is written,
and the same names travel to the peer unchanged (``jobs/wire.py`` states their ranges). ``None``
means "the peer's default" and is not sent. ``reduce`` is not among them: it changes what
``map`` returns, so it is a keyword of its own there.
"""

from __future__ import annotations

from typing import Literal, TypedDict

# The placement policies a peer knows (``jobs/policies.py::POLICY_NAMES``; a test keeps the two
# lists equal).
Policy = Literal["least-loaded", "round-robin", "weighted", "least-connections", "broadcast"]


class JobOptions(TypedDict, total=False):
    """How a job runs; every key is optional."""

    # How tasks are placed on peers; ``broadcast`` runs every item on every peer.
    policy: Policy | None
    # Spread over this many peers, every live peer ("all"), or exactly these ``HOST:PORT``.
    peers: int | Literal["all"] | list[str] | None
    # Items per task (the unit placed on a peer and reported back as one piece of results).
    chunk_size: int | None
    # Per item: an item running longer fails with ``task-timeout``.
    timeout_s: float | None
    # Times an item whose worker crashed or timed out is run again, alone.
    retries: int | None
    # Stop the job at the first item that fails.
    fail_fast: bool | None
