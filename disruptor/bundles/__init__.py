"""Bundles: signed, content-addressed app archives, and the store that holds them.

``manifest`` (the app's ``bundle.toml``), ``pack`` (deterministic tar + zstd), ``signing`` (Ed25519
signed manifests), ``trust`` (publisher keys a peer accepts), ``unpack`` (safe, bounded extraction),
``store`` (atomic, verified, content-addressed storage) and ``fetch`` (from other peers).
"""
