"""The data directory: cluster secret, API token, signing key, trusted keys, per-peer state.

``$DISRUPTOR_HOME`` (default ``~/.disruptor``) is shared by every peer and CLI call of one user on
one machine, like Erlang's cookie file: the first to need a secret creates it (mode 0600, with
``O_EXCL`` so two peers starting at once agree on one), and everyone after reads it. Each peer keeps
its own store and state under ``peers/<host>_<port>/``.

Layout::

    $DISRUPTOR_HOME/
      cluster.secret      32 random bytes, hex; authenticates gossip and peer-to-peer calls
      api.token           bearer token for the HTTP API (CLI and client read it from here)
      keys/signing.key    this user's Ed25519 signing key (created by ``keygen`` or on first push)
      trusted/            one file per trusted publisher public key (<key id>.pub)
      peers/<host>_<port>/  one peer's bundle store, unpacked bundles, worker scratch, state
      config.toml         optional settings (see disruptor.settings)
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from .errors import InvalidName

SECRET_FILE_MODE = 0o600
DIR_MODE = 0o700


def default_home() -> Path:
    """``$DISRUPTOR_HOME`` if set, else ``~/.disruptor``."""
    env = os.environ.get("DISRUPTOR_HOME")
    return Path(env).expanduser() if env else Path.home() / ".disruptor"


def read_or_create_secret(path: Path, make: bytes) -> bytes:
    """Return the file's bytes, creating it with ``make`` (mode 0600) if it does not exist.

    ``O_EXCL`` makes creation race-free: of two processes creating at once, one wins and the other
    reads the winner's bytes.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SECRET_FILE_MODE)
    except FileExistsError:
        data = path.read_bytes()
        if data:
            return data
        # A creator may be between open and write; its bytes appear soon after.
        for _ in range(1000):
            data = path.read_bytes()
            if data:
                return data
            os.sched_yield()
        raise
    with os.fdopen(fd, "wb") as f:
        f.write(make)
        f.flush()
        os.fsync(f.fileno())
    return make


@dataclass(frozen=True)
class Home:
    """One data directory; every path disruptor writes outside a test's tmp dir comes from here."""

    root: Path

    @classmethod
    def from_env(cls) -> Home:
        return cls(default_home())

    def ensure(self) -> Home:
        self.root.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        return self

    @property
    def secret_path(self) -> Path:
        return self.root / "cluster.secret"

    @property
    def token_path(self) -> Path:
        return self.root / "api.token"

    @property
    def signing_key_path(self) -> Path:
        return self.root / "keys" / "signing.key"

    @property
    def trusted_dir(self) -> Path:
        return self.root / "trusted"

    @property
    def config_path(self) -> Path:
        return self.root / "config.toml"

    def cluster_secret(self) -> bytes:
        """The 32-byte cluster secret, created on first use."""
        raw = read_or_create_secret(self.secret_path, secrets.token_hex(32).encode() + b"\n")
        return bytes.fromhex(raw.decode().strip())

    def api_token(self) -> str:
        """The bearer token for the HTTP API, created on first use."""
        raw = read_or_create_secret(self.token_path, secrets.token_urlsafe(32).encode() + b"\n")
        return raw.decode().strip()

    def peer_dir(self, host: str, port: int) -> Path:
        """This peer's own state directory, ``peers/<host>_<port>``."""
        safe_host = host.replace(":", "-").replace("/", "-")
        if not safe_host or safe_host.startswith("."):
            raise InvalidName(f"host {host!r} cannot name a directory")
        path = self.root / "peers" / f"{safe_host}_{int(port)}"
        path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        return path
