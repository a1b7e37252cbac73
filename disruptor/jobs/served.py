"""``TaskServer``: the attempts other coordinators place on this peer (``POST /tasks``).

Each runs on the local executor, fetching the bundle from the coordinator or the sources it
named; ``DELETE /tasks/<job>`` stops a job's attempts here. Rule: the number running at once is
bounded (``tasks_served_max``): one more is refused as ``Overloaded`` with a ``retry_after_s``,
which the coordinator's dispatcher takes as "busy", not as a lost peer.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..errors import Overloaded
from ..outcome import ItemOutcome
from .local import LocalExecutor
from .model import Work
from .settings import JobsSettings, JobStats


class TaskServer:
    def __init__(self, local: LocalExecutor, settings: JobsSettings, stats: JobStats) -> None:
        self.local = local
        self.settings = settings
        self.stats = stats
        self._served: dict[str, dict[str, asyncio.Task[Any]]] = {}

    async def serve_task(self, work: Work, body: dict[str, Any]) -> list[ItemOutcome]:
        """Run an attempt another coordinator placed here."""
        if self.stats.tasks_serving >= self.settings.tasks_served_max:
            self.stats.rejected_overloaded += 1
            raise Overloaded(
                f"{self.stats.tasks_serving} tasks running here",
                retry_after_s=self.settings.retry_after_s,
            )
        job_id, task_id = str(body["job"]), str(body["task"])
        timeout = body.get("timeout_s")
        sources = [str(s) for s in body.get("sources") or []]
        coordinator = body.get("coordinator")
        if isinstance(coordinator, str) and coordinator not in sources:
            sources.append(coordinator)
        current = asyncio.current_task()
        assert current is not None
        self._served.setdefault(job_id, {})[task_id] = current
        self.stats.tasks_served += 1
        self.stats.tasks_serving += 1
        try:
            return await self.local.run(
                work, list(body["items"]), float(timeout) if timeout else None, sources
            )
        finally:
            self.stats.tasks_serving -= 1
            tasks = self._served.get(job_id, {})
            if tasks.get(task_id) is current:
                del tasks[task_id]
            if not tasks:
                self._served.pop(job_id, None)

    def abandon_served(self, job_id: str, task_id: str | None = None) -> int:
        """Stop attempts of a job running here for another coordinator; how many were stopped."""
        tasks = self._served.get(job_id, {})
        chosen = [t for k, t in tasks.items() if task_id is None or k == task_id]
        for task in chosen:
            task.cancel()
        return len(chosen)

    async def ensure_bundle(self, sha1: str, sources: list[str]) -> None:
        """Fetch a bundle here from ``sources`` (a peer deploying it asked, ``/tasks/fetch``)."""
        await self.local.ensure_bundle(sha1, sources)

    def serving(self) -> dict[str, list[str]]:
        return {job: sorted(tasks) for job, tasks in self._served.items() if tasks}

    async def stop(self) -> None:
        """Stop every attempt running here for another coordinator."""
        served = [t for tasks in self._served.values() for t in tasks.values()]
        for task in served:
            task.cancel()
        await asyncio.gather(*served, return_exceptions=True)
