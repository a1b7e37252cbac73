"""The Python client: ``AsyncClient`` for asyncio code, ``Client`` for everything else.

``start`` on either gives a handle on a running job (``AsyncJob``, ``Job``) whose ``Progress``
moves as results arrive; ``JobOptions`` types the options every job call takes.
"""

from __future__ import annotations

from .aio import AsyncClient
from .collected import Progress
from .handles import AsyncJob, Job
from .options import JobOptions, Policy
from .sync import Client

__all__ = ["AsyncClient", "AsyncJob", "Client", "Job", "JobOptions", "Policy", "Progress"]
