"""Persistent worker subprocesses: the NDJSON protocol, isolation, and the pool that runs them.

Sans-IO cores (``framing``, ``messages``, ``session``, ``restarts``) hold the protocol rules; the
adapters (``process``, ``isolation``, ``pool`` with its records in ``model``) move bytes and start
processes. The worker side of the protocol for Python bundles is ``disruptor.worker``.
"""
