"""``TaskServer``: the attempts other coordinators place on this peer (``POST /tasks``).

Each runs on the local executor, fetching the bundle from the coordinator or the sources it
named; ``DELETE /tasks/<job>`` stops a job's attempts here. Rule: the number running at once is
bounded (``tasks_served_max``): one more is refused as ``Overloaded`` with a ``retry_after_s``,
which the coordinator's dispatcher takes as "busy", not as a lost peer.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..chunks import Chunk, ChunkResult
from ..errors import Overloaded
from .local import LocalExecutor
from .model import Work
from .settings import JobsSettings, JobStats
from .wire import TaskRequest


class TaskServer:
    def __init__(self, local: LocalExecutor, settings: JobsSettings, stats: JobStats) -> None:
        self.local = local
        self.settings = settings
        self.stats = stats
        self._served: dict[str, dict[str, asyncio.Task[Any]]] = {}

    async def serve_task(self, work: Work, request: TaskRequest) -> ChunkResult:
        """Run an attempt another coordinator placed here."""
        if self.stats.tasks_serving >= self.settings.tasks_served_max:
            self.stats.rejected_overloaded += 1
            raise Overloaded(
                f"{self.stats.tasks_serving} tasks running here",
                retry_after_s=self.settings.retry_after_s,
            )
        chunk = Chunk.from_bytes(bytes(request.items), request.count)
        sources = list(request.sources)
        if request.coordinator not in sources:
            sources.append(request.coordinator)
        current = asyncio.current_task()
        assert current is not None
        self._served.setdefault(request.job, {})[request.task] = current
        self.stats.tasks_served += 1
        self.stats.tasks_serving += 1
        try:
            return await self.local.run(work, chunk, request.timeout_s, sources)
        finally:
            self.stats.tasks_serving -= 1
            tasks = self._served.get(request.job, {})
            if tasks.get(request.task) is current:
                del tasks[request.task]
            if not tasks:
                self._served.pop(request.job, None)

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
