"""disruptor: peer-to-peer, fault-tolerant, real-time computation.

The public API is small and listed in ``__all__`` (a test pins it); everything else is internal.
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import errors
from .errors import DisruptorError

__all__ = ["DisruptorError", "__version__", "errors"]
