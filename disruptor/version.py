"""The software's version, in a module of its own so that any layer may read it.

Rule: this module imports nothing, so reading the version never pulls in a part of the peer.
"""

__version__ = "0.1.0"
