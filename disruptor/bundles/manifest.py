"""The app manifest ``bundle.toml``: what a bundle is called and how its worker starts.

Rule: a manifest is parsed once, strictly, into frozen dataclasses; anything unexpected (an unknown
key, a wrong type, a value out of range) raises ``ManifestInvalid`` naming the field, so a bad
bundle is refused when it is packed or unpacked, never half-understood by a worker pool later.

Format::

    name = "wordcount"            # required, [a-z0-9][a-z0-9._-]{0,63}
    version = "1.0.0"             # required
    description = "..."           # optional

    [worker]
    handler = "wordcount:handle"  # module:function, or
    # command = ["./worker"]      # argv relative to the bundle root
    concurrency = 1
    count = 1
    timeout_s = 60
    env = { GREETING = "hi" }

    [limits]
    memory_mb = 1024
    cpu_s = 3600
    open_files = 256
    file_mb = 64
    processes = 64
    scratch_mb = 256              # optional: the peer's workers.scratch_mb_default if absent
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from types import MappingProxyType
from typing import Any

from ..errors import ManifestInvalid

MANIFEST_NAME = "bundle.toml"
# A manifest is a few hundred bytes; anything far bigger is not a manifest.
MANIFEST_BYTES_MAX = 64 * 1024

NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
VERSION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+_-]{0,63}")
HANDLER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*")
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

_TOP_KEYS = {"name", "version", "description", "worker", "limits"}
_WORKER_KEYS = {"handler", "command", "concurrency", "count", "timeout_s", "env"}


@dataclass(frozen=True)
class WorkerLimits:
    """Resource limits applied to each worker process (defaults are safe for a laptop)."""

    memory_mb: int = 1024
    cpu_s: int = 3600  # cumulative CPU seconds of one worker process
    open_files: int = 256
    file_mb: int = 64  # largest file a worker may write
    processes: int = 64
    # Its scratch directory's size; None: the peer's default (``workers.scratch_mb_default``).
    scratch_mb: int | None = None


# Upper bounds a manifest may ask for; a bundle asking more is refused rather than clamped.
_LIMIT_RANGES: dict[str, tuple[int, int]] = {
    "memory_mb": (16, 1024 * 1024),
    "cpu_s": (1, 7 * 24 * 3600),
    "open_files": (16, 65536),
    "file_mb": (1, 1024 * 1024),
    "processes": (1, 4096),
}
# Optional limits: absent means "the peer decides".
_OPTIONAL_LIMIT_RANGES: dict[str, tuple[int, int]] = {
    "scratch_mb": (1, 1024 * 1024),
}


@dataclass(frozen=True)
class WorkerSpec:
    """How a worker starts: a Python ``handler`` or a ``command``, exactly one of them."""

    handler: str | None = None
    command: tuple[str, ...] | None = None
    concurrency: int = 1
    count: int = 1
    timeout_s: float = 60.0
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class AppManifest:
    name: str
    version: str
    description: str
    worker: WorkerSpec
    limits: WorkerLimits


def parse_app_manifest(raw: bytes | str) -> AppManifest:
    """Validate manifest text (TOML) into an ``AppManifest``."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        data = tomllib.loads(text)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ManifestInvalid(f"{MANIFEST_NAME}: not valid TOML: {exc}") from None
    _no_unknown(data, _TOP_KEYS, "")
    name = _string(data, "name", required=True)
    if not NAME_RE.fullmatch(name):
        raise ManifestInvalid("name: must match [a-z0-9][a-z0-9._-]{0,63}", field="name")
    version = _string(data, "version", required=True)
    if not VERSION_RE.fullmatch(version):
        raise ManifestInvalid(
            "version: letters, digits and . + _ - only, at most 64", field="version"
        )
    description = _string(data, "description", required=False)
    return AppManifest(
        name=name,
        version=version,
        description=description,
        worker=_worker(_table(data, "worker")),
        limits=_limits(_table(data, "limits")),
    )


def _worker(table: dict[str, Any]) -> WorkerSpec:
    _no_unknown(table, _WORKER_KEYS, "worker.")
    handler: str | None = None
    command: tuple[str, ...] | None = None
    if "handler" in table:
        handler = _string(table, "handler", required=True, prefix="worker.")
        if not HANDLER_RE.fullmatch(handler):
            raise ManifestInvalid("worker.handler: must be module:function", field="worker.handler")
    if "command" in table:
        value = table["command"]
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(a, str) and a and "\0" not in a for a in value)
        ):
            raise ManifestInvalid(
                "worker.command: must be a non-empty list of strings", field="worker.command"
            )
        command = tuple(value)
        if command[0].startswith("/") or ".." in PurePosixPath(command[0]).parts:
            raise ManifestInvalid(
                "worker.command: the program must be relative to the bundle root",
                field="worker.command",
            )
    if handler is not None and command is not None:
        raise ManifestInvalid(
            "worker.handler: give handler or command, not both", field="worker.handler"
        )
    if table and handler is None and command is None:
        raise ManifestInvalid(
            "worker.handler: [worker] needs handler or command", field="worker.handler"
        )
    env = table.get("env", {})
    if not isinstance(env, dict):
        raise ManifestInvalid("worker.env: must be a table of strings", field="worker.env")
    for key, value in env.items():
        if not ENV_NAME_RE.fullmatch(key) or not isinstance(value, str) or "\0" in value:
            raise ManifestInvalid(
                f"worker.env.{key}: names are identifiers and values strings",
                field=f"worker.env.{key}",
            )
    return WorkerSpec(
        handler=handler,
        command=command,
        concurrency=_int(table, "worker.concurrency", "concurrency", 1, 1, 1024),
        count=_int(table, "worker.count", "count", 1, 0, 1024),
        timeout_s=_number(table, "worker.timeout_s", "timeout_s", 60.0, 0.001, 7 * 24 * 3600.0),
        env=MappingProxyType(dict(env)),
    )


def _limits(table: dict[str, Any]) -> WorkerLimits:
    _no_unknown(table, set(_LIMIT_RANGES) | set(_OPTIONAL_LIMIT_RANGES), "limits.")
    defaults = WorkerLimits()
    values: dict[str, int | None] = {
        key: _int(table, f"limits.{key}", key, getattr(defaults, key), low, high)
        for key, (low, high) in _LIMIT_RANGES.items()
    }
    for key, (low, high) in _OPTIONAL_LIMIT_RANGES.items():
        values[key] = _int(table, f"limits.{key}", key, 0, low, high) if key in table else None
    return WorkerLimits(**values)  # type: ignore[arg-type]


def _no_unknown(table: dict[str, Any], known: set[str], prefix: str) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise ManifestInvalid(
            f"{prefix}{unknown[0]}: unknown key (known: {', '.join(sorted(known))})",
            field=f"{prefix}{unknown[0]}",
        )


def _table(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ManifestInvalid(f"{key}: must be a table", field=key)
    return value


def _string(data: dict[str, Any], key: str, *, required: bool, prefix: str = "") -> str:
    if key not in data:
        if required:
            raise ManifestInvalid(f"{prefix}{key}: required", field=f"{prefix}{key}")
        return ""
    value = data[key]
    if not isinstance(value, str) or "\0" in value:
        raise ManifestInvalid(f"{prefix}{key}: must be a string", field=f"{prefix}{key}")
    return value


def _int(data: dict[str, Any], name: str, key: str, default: int, low: int, high: int) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ManifestInvalid(f"{name}: must be an integer", field=name)
    if not low <= value <= high:
        raise ManifestInvalid(f"{name}: must be between {low} and {high}", field=name)
    return value


def _number(
    data: dict[str, Any], name: str, key: str, default: float, low: float, high: float
) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ManifestInvalid(f"{name}: must be a number", field=name)
    if not low <= value <= high:
        raise ManifestInvalid(f"{name}: must be between {low} and {high}", field=name)
    return float(value)
