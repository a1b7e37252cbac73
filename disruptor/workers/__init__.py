"""Persistent worker subprocesses: the NDJSON protocol, isolation, and the pool that runs them.

Sans-IO cores (``framing``, ``messages``, ``session``, ``restarts``) hold the protocol rules; the
adapters (``process``, ``isolation``, and ``pool`` with its queues in ``batching``, its launches in
``launch``, its handling of dead workers in ``supervisor`` and its records in ``model``) move
bytes and start processes. The worker side of the protocol for Python bundles is
``disruptor.worker_runtime``.
"""
