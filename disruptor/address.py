"""HOST:PORT addresses: the one name a peer has (its HTTP and UDP ports are the same number)."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import BadRequest

PORT_MAX = 65535


@dataclass(frozen=True, order=True)
class Address:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str, default_port: int | None = None) -> Address:
        """Parse ``HOST:PORT`` (``[v6]:PORT`` for IPv6, ``http://`` prefix tolerated)."""
        raw = text.strip()
        for scheme in ("http://", "https://"):
            raw = raw.removeprefix(scheme)
        raw = raw.rstrip("/")
        if raw.startswith("["):
            host, sep, rest = raw[1:].partition("]")
            port_text = rest.removeprefix(":") if sep else ""
        else:
            host, _, port_text = raw.rpartition(":")
            if not host:
                host, port_text = raw, ""
        if not port_text:
            if default_port is None:
                raise BadRequest(f"address {text!r} needs a port: HOST:PORT")
            port_text = str(default_port)
        if not host or not port_text.isdigit() or not 0 < int(port_text) <= PORT_MAX:
            raise BadRequest(f"address {text!r} is not HOST:PORT")
        return cls(host, int(port_text))

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self}"
