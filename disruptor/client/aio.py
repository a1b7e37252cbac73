"""``AsyncClient``: one class composed of a mixin per resource over the shared transport.

Each resource's calls live in their own module (``client/bundles.py``...) as a mixin, so the
client grows with the API without one large file.
"""

from __future__ import annotations

from .bundles import BundlesMixin
from .jobs import JobsMixin
from .peers import PeersMixin
from .snippets import SnippetsMixin
from .transport import Transport
from .workers import WorkersMixin


class AsyncClient(JobsMixin, BundlesMixin, SnippetsMixin, WorkersMixin, PeersMixin, Transport):
    """Talks to one or several peers; fails over between them on connection errors."""
