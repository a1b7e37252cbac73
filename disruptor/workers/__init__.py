"""Persistent worker subprocesses: the worker protocol (NDJSON, version 1, and length-prefixed
MessagePack frames, version 2), isolation, and the pool that runs chunks of items on them.

Sans-IO cores (``framing``, ``messages``, ``session``, ``restarts``) hold the protocol rules; the
adapters (``process``, ``isolation``, and ``pool`` with its queues in ``batching``, its launches in
``launch``, its handling of dead workers in ``supervisor`` and its records in ``model``) move
bytes and start processes. The worker side of the protocol for Python bundles is
``disruptor.worker_runtime``.
"""
