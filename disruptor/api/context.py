"""The application keys through which handlers reach the parts they serve.

``PARTS`` is the typed record of the peer's parts (``disruptor.parts.Parts``), ``METRICS`` the
metrics part; the composition root puts both in the application it builds. A handler takes the
one part it needs (``request.app[PARTS].store``...), never the peer.
"""

from __future__ import annotations

from aiohttp import web

from ..metrics import Metrics
from ..parts import Parts

PARTS: web.AppKey[Parts] = web.AppKey("parts", Parts)
METRICS: web.AppKey[Metrics] = web.AppKey("metrics", Metrics)
