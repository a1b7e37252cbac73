"""The publishers a peer accepts: trusted Ed25519 public keys in the data directory.

Each trusted key is one file ``trusted/<key id>.pub`` holding ``ed25519:<hex>``. The user's own
signing key (``keys/signing.key``) is trusted without a file, so one machine needs no set-up.

Rule: the trust store is read from disk on every lookup (a directory listing and a small file),
so ``disruptor trust add|rm`` takes effect on running peers at once, with no restart or cache to
go stale.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import BadRequest, NotFound
from ..home import DIR_MODE, Home
from .signing import (
    KEY_ID_RE,
    format_public_key,
    key_id_of,
    load_private_key,
    parse_public_key,
    public_raw,
)

PUBLIC_KEY_FILE_MODE = 0o644


@dataclass(frozen=True)
class TrustedKey:
    key_id: str
    public: bytes
    source: str  # "local" (this user's signing key) or "trusted" (added with trust add)

    @property
    def text(self) -> str:
        return format_public_key(self.public)


class TrustStore:
    def __init__(self, trusted_dir: Path, local_key_path: Path | None = None) -> None:
        self.trusted_dir = trusted_dir
        self.local_key_path = local_key_path
        self._local_cache: tuple[tuple[int, int], bytes] | None = None

    @classmethod
    def for_home(cls, home: Home) -> TrustStore:
        return cls(home.trusted_dir, home.signing_key_path)

    def local_key(self) -> bytes | None:
        """The raw public key of this user's signing key, if one exists."""
        if self.local_key_path is None:
            return None
        try:
            st = os.stat(self.local_key_path)
        except FileNotFoundError:
            return None
        stamp = (st.st_mtime_ns, st.st_size)
        if self._local_cache is None or self._local_cache[0] != stamp:
            self._local_cache = (stamp, public_raw(load_private_key(self.local_key_path)))
        return self._local_cache[1]

    def lookup(self, key_id: str) -> bytes | None:
        """The trusted public key named ``key_id``, or None when it is not trusted."""
        if not KEY_ID_RE.fullmatch(key_id):
            return None
        local = self.local_key()
        if local is not None and key_id_of(local) == key_id:
            return local
        path = self.trusted_dir / f"{key_id}.pub"
        try:
            raw = parse_public_key(path.read_text())
        except (OSError, ValueError, BadRequest):
            return None
        # A file renamed by hand to another key's id must not vouch for that key.
        return raw if key_id_of(raw) == key_id else None

    def add(self, public_text: str) -> TrustedKey:
        raw = parse_public_key(public_text)
        key_id = key_id_of(raw)
        self.trusted_dir.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        final = self.trusted_dir / f"{key_id}.pub"
        temp = self.trusted_dir / f".{key_id}.pub.tmp{os.getpid()}"
        temp.write_text(format_public_key(raw) + "\n")
        temp.chmod(PUBLIC_KEY_FILE_MODE)
        temp.replace(final)
        return TrustedKey(key_id, raw, "trusted")

    def remove(self, key: str) -> str:
        """Stop trusting ``key`` (a key id or a public key); returns its key id."""
        key_id = key.strip().lower()
        if not KEY_ID_RE.fullmatch(key_id):
            key_id = key_id_of(parse_public_key(key))
        path = self.trusted_dir / f"{key_id}.pub"
        try:
            path.unlink()
        except FileNotFoundError:
            local = self.local_key()
            if local is not None and key_id_of(local) == key_id:
                raise NotFound(
                    f"{key_id} is this user's own signing key, trusted by default"
                ) from None
            raise NotFound(f"key {key_id} is not trusted") from None
        return key_id

    def list(self) -> list[TrustedKey]:
        keys: list[TrustedKey] = []
        local = self.local_key()
        if local is not None:
            keys.append(TrustedKey(key_id_of(local), local, "local"))
        if self.trusted_dir.is_dir():
            for path in sorted(self.trusted_dir.glob("*.pub")):
                raw = self.lookup(path.stem)
                if raw is not None and all(k.public != raw for k in keys):
                    keys.append(TrustedKey(path.stem, raw, "trusted"))
        return keys
