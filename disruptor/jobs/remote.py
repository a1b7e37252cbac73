"""``TaskCalls``: the calls a coordinating peer makes to the peers it places tasks on.

``POST /tasks`` runs one attempt of a task on another peer and returns its outcomes; ``DELETE
/tasks/<job id>`` abandons a job's attempts there. Both go over the peer link, which signs them
and maps connection failures to ``PeerUnreachable``; a problem+json reply is the peer's own error.
Rule: a reply that is not exactly one outcome per item is a ``ProtocolError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from ..errors import DisruptorError, ProtocolError
from ..link.peer_link import PeerLink
from ..outcome import ItemOutcome
from .model import Work

TASKS_PATH = "/tasks"
# The answer to an abandon is a few bytes of JSON; more than this is not read.
ABANDON_REPLY_BYTES_MAX = 64 * 1024


def task_body(
    job_id: str,
    task_id: str,
    attempt: int,
    coordinator: str,
    work: Work,
    items: list[Any],
    timeout_s: float | None,
    sources: Sequence[str] | None,
) -> dict[str, Any]:
    """What ``POST /tasks`` carries: the attempt, the work, its items, where to get the bundle."""
    body: dict[str, Any] = {
        "job": job_id,
        "task": task_id,
        "attempt": attempt,
        "coordinator": coordinator,
        **work.to_json(),
        "items": items,
        "timeout_s": timeout_s,
    }
    if sources is not None:
        body["sources"] = list(sources)
    return body


class TaskCalls:
    def __init__(self, link: PeerLink, connect_timeout_s: float) -> None:
        self.link = link
        self.connect_timeout_s = connect_timeout_s

    async def run_task(self, peer: str, body: dict[str, Any], count: int) -> list[ItemOutcome]:
        """Run one attempt on ``peer``; exactly ``count`` outcomes come back, or an error."""
        reply = await self.link.call_json(
            "POST", peer, TASKS_PATH, body, connect_timeout_s=self.connect_timeout_s
        )
        results = reply.get("results") if isinstance(reply, dict) else None
        if not isinstance(results, list) or len(results) != count:
            raise ProtocolError(f"{peer} answered a task of {count} items with a bad result list")
        try:
            return [ItemOutcome.from_json(r) for r in results]
        except (AttributeError, TypeError) as exc:
            raise ProtocolError(f"{peer} sent a malformed outcome: {exc}") from None

    async def abandon(self, peer: str, job_id: str, task_id: str | None = None) -> None:
        """Ask ``peer`` to stop the job's attempts (one task's, if named); best effort."""
        target = f"{TASKS_PATH}/{quote(job_id, safe='')}"
        if task_id:
            target += f"?task={quote(task_id, safe='')}"
        try:
            async with self.link.open(
                "DELETE", peer, target, connect_timeout_s=self.connect_timeout_s
            ) as reply:
                await reply.body(ABANDON_REPLY_BYTES_MAX)
        except DisruptorError:
            pass  # the peer is gone (or confused): nothing of ours runs there any more
