"""One peer's settings from four layers: defaults, a TOML file, the environment, and flags.

Later layers win: a flag beats an environment variable, which beats the file, which beats the
default. Every setting is named ``SECTION.KEY``: the ``peer`` section holds ``PeerSettings``'s own
fields (address, seeds, cluster_name...), each other section is one of its dataclass fields
(``http``, ``jobs``, ``membership``...), and ``log`` holds the log level and format. In the file a
section is a TOML table (``[http]``, ``keepalive_timeout_s = 30``); in the environment it is
``DISRUPTOR_<SECTION>_<KEY>`` (``DISRUPTOR_HTTP_KEEPALIVE_TIMEOUT_S=30``); on the command line it is
``--set http.keepalive_timeout_s=30`` or a named flag. ``load_settings`` also says where each value
came from, for ``disruptor config show``.

Rule: the schema is read from the dataclasses themselves, so a part's new setting is configurable
everywhere at once; an unknown key or a value of the wrong type in the file or a flag is an error
naming the key and where it was found, never silently ignored.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .address import Address
from .errors import BadRequest
from .home import default_home
from .logs import LOG_FORMATS, LOG_LEVELS
from .settings import PeerSettings

ENV_PREFIX = "DISRUPTOR_"
PEER_SECTION = "peer"
LOG_SECTION = "log"
CONFIG_FILE_BYTES_MAX = 1024 * 1024
# Dataclasses that are one value (written HOST:PORT), not a section of keys.
VALUE_TYPES: tuple[type[Any], ...] = (Address,)
# Set by the data directory itself, never by a file inside it.
NOT_IN_FILE = frozenset({(PEER_SECTION, "home")})


@dataclass(frozen=True)
class LogSettings:
    # debug, info, warning or error.
    level: str = "warning"
    # "text" (for people) or "json" (one object a line, for log collectors).
    format: str = "text"

    def __post_init__(self) -> None:
        if self.level not in LOG_LEVELS:
            raise ValueError(f"log.level must be one of {', '.join(LOG_LEVELS)}")
        if self.format not in LOG_FORMATS:
            raise ValueError(f"log.format must be one of {', '.join(LOG_FORMATS)}")


@dataclass(frozen=True)
class Entry:
    """One effective setting and where it came from."""

    name: str  # SECTION.KEY
    value: Any
    source: str  # "default", "file PATH", "env NAME" or "flag --NAME"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "value": _show(self.value), "source": self.source}


@dataclass(frozen=True)
class LoadedSettings:
    peer: PeerSettings
    log: LogSettings
    entries: tuple[Entry, ...]
    config_file: Path

    def source_of(self, name: str) -> str:
        return next(e.source for e in self.entries if e.name == name)


@dataclass(frozen=True)
class _Key:
    section: str
    key: str
    type_: Any
    default: Any

    @property
    def name(self) -> str:
        return f"{self.section}.{self.key}"

    @property
    def env_name(self) -> str:
        return f"{ENV_PREFIX}{self.section.upper()}_{self.key.upper()}"


def _dataclass_of(type_: Any) -> type[Any] | None:
    """The dataclass a field holds (``X`` or ``X | None``), if any."""
    candidates = typing.get_args(type_) if _is_union(type_) else (type_,)
    for candidate in candidates:
        if candidate in VALUE_TYPES:
            continue
        if isinstance(candidate, type) and dataclasses.is_dataclass(candidate):
            return candidate
    return None


def _is_union(type_: Any) -> bool:
    return typing.get_origin(type_) in (typing.Union, types.UnionType)


def schema() -> dict[str, dict[str, _Key]]:
    """Every configurable key, by section, with its type and default."""
    sections: dict[str, dict[str, _Key]] = {PEER_SECTION: {}}
    default = PeerSettings()
    hints = typing.get_type_hints(PeerSettings)
    for f in dataclasses.fields(PeerSettings):
        nested = _dataclass_of(hints[f.name])
        if nested is None:
            sections[PEER_SECTION][f.name] = _Key(
                PEER_SECTION, f.name, hints[f.name], getattr(default, f.name)
            )
            continue
        instance = getattr(default, f.name)
        sections[f.name] = _section_keys(f.name, nested, instance)
    sections[LOG_SECTION] = _section_keys(LOG_SECTION, LogSettings, LogSettings())
    return sections


def _section_keys(section: str, cls: type[Any], instance: Any) -> dict[str, _Key]:
    hints = typing.get_type_hints(cls)
    keys: dict[str, _Key] = {}
    for f in dataclasses.fields(cls):
        if _dataclass_of(hints[f.name]) is not None:
            continue  # deeper nesting is not configurable by key
        if instance is not None:
            default = getattr(instance, f.name)
        elif f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        keys[f.name] = _Key(section, f.name, hints[f.name], default)
    return keys


def coerce(key: _Key, value: Any, where: str) -> Any:
    """``value`` (from TOML, or a string from the environment or a flag) as the key's type."""
    try:
        return _coerce(key.type_, value)
    except (ValueError, TypeError) as exc:
        raise BadRequest(f"{where}: {key.name} = {value!r}: {exc}") from None


def _coerce(type_: Any, value: Any) -> Any:
    if _is_union(type_):
        args = typing.get_args(type_)
        empty = value is None or (isinstance(value, str) and value.lower() in ("", "none"))
        if empty and type(None) in args:
            return None
        errors: list[str] = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value)
            except (ValueError, TypeError) as exc:
                errors.append(str(exc))
        raise ValueError("; ".join(errors) or "no type fits")
    origin = typing.get_origin(type_)
    if type_ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError("expected true or false")
    if type_ is int:
        if isinstance(value, bool):
            raise TypeError("expected an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            return int(value.replace("_", ""))
        raise TypeError("expected an integer")
    if type_ is float:
        if isinstance(value, bool):
            raise TypeError("expected a number")
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            return float(value)
        raise TypeError("expected a number")
    if type_ is str:
        if isinstance(value, str):
            return value
        raise TypeError("expected a string")
    if type_ is Path:
        if isinstance(value, str | Path):
            return Path(value).expanduser()
        raise TypeError("expected a path")
    if type_ is Address:
        if isinstance(value, Address):
            return value
        if isinstance(value, str):
            try:
                return Address.parse(value)
            except BadRequest as exc:
                raise ValueError(exc.detail) from None
        raise TypeError("expected HOST:PORT")
    if origin is tuple:
        args = typing.get_args(type_)
        item_type = args[0] if args else str
        items = value.replace(",", " ").split() if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise TypeError("expected a list")
        return tuple(_coerce(item_type, item) for item in items)
    if origin in (Mapping, dict, typing.get_origin(Mapping[str, Any])):
        _, value_type = typing.get_args(type_) or (str, Any)
        if isinstance(value, str):
            pairs = [p.partition("=") for p in value.replace(",", " ").split()]
            value = {k: v for k, _, v in pairs}
        if not isinstance(value, Mapping):
            raise TypeError("expected a table of KEY = VALUE")
        return {str(k): _coerce(value_type, v) for k, v in value.items()}
    if type_ is Any:
        return value
    raise TypeError(f"cannot set a {type_!r} here")


def read_config_file(path: Path) -> dict[str, Any]:
    """The file's tables, or {} when it does not exist; a broken file is an error."""
    try:
        with path.open("rb") as f:
            raw = f.read(CONFIG_FILE_BYTES_MAX + 1)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise BadRequest(f"cannot read {path}: {exc.strerror}") from None
    if len(raw) > CONFIG_FILE_BYTES_MAX:
        raise BadRequest(f"{path} is larger than {CONFIG_FILE_BYTES_MAX} bytes")
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"{path} is not valid TOML: {exc}") from None


def parse_assignment(text: str) -> tuple[str, str]:
    """``SECTION.KEY=VALUE`` (a ``--set`` flag) as ``("SECTION.KEY", "VALUE")``."""
    name, sep, value = text.partition("=")
    if not sep or "." not in name:
        raise BadRequest(f"--set {text!r}: expected SECTION.KEY=VALUE")
    return name.strip(), value.strip()


def load_settings(
    *,
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, tuple[Any, str]] | None = None,
) -> LoadedSettings:
    """Merge the layers. ``flags`` maps ``SECTION.KEY`` to ``(value, flag name)``."""
    env = os.environ if env is None else env
    keys = schema()
    by_name = {k.name: k for section in keys.values() for k in section.values()}
    home_value = (
        Path(env[f"{ENV_PREFIX}HOME"]).expanduser() if env.get(f"{ENV_PREFIX}HOME") else None
    )
    path = config_file or (home_value or default_home()) / "config.toml"

    chosen: dict[str, tuple[Any, str]] = {k.name: (k.default, "default") for k in by_name.values()}
    if home_value is not None:
        chosen[f"{PEER_SECTION}.home"] = (home_value, f"env {ENV_PREFIX}HOME")

    where = f"file {path}"
    for section, table in read_config_file(path).items():
        if section not in keys:
            raise BadRequest(f"{path}: unknown section [{section}] (known: {', '.join(keys)})")
        if not isinstance(table, dict):
            raise BadRequest(f"{path}: {section} must be a table ([{section}])")
        for name, value in table.items():
            key = keys[section].get(name)
            if key is None or (section, name) in NOT_IN_FILE:
                raise BadRequest(f"{path}: unknown setting {section}.{name}")
            chosen[key.name] = (coerce(key, value, str(path)), where)

    for key in by_name.values():
        if key.env_name in env and (key.section, key.key) not in NOT_IN_FILE:
            source = f"env {key.env_name}"
            chosen[key.name] = (coerce(key, env[key.env_name], source), source)

    for name, (value, flag) in (flags or {}).items():
        key = by_name.get(name)
        if key is None:
            raise BadRequest(f"{flag}: unknown setting {name!r}")
        chosen[name] = (coerce(key, value, flag), f"flag {flag}")

    _apply_preset(keys, chosen)
    peer, log_settings = _build(keys, chosen)
    entries = tuple(Entry(name, value, source) for name, (value, source) in chosen.items())
    return LoadedSettings(peer, log_settings, entries, path)


def _apply_preset(keys: dict[str, dict[str, _Key]], chosen: dict[str, tuple[Any, str]]) -> None:
    """Show the gossip preset's values, not the bare defaults, for untouched membership keys.

    The peer runs the preset (``peer.preset``) with the settings' explicit membership values on
    top, so that is what an untouched key really is.
    """
    if "membership" not in keys:
        return
    from .membership.settings import preset

    name = str(chosen[f"{PEER_SECTION}.preset"][0])
    values = preset(name)
    for key in keys["membership"]:
        full = f"membership.{key}"
        if chosen[full][1] == "default" and hasattr(values, key):
            chosen[full] = (getattr(values, key), f"preset {name}")


def _build(
    keys: dict[str, dict[str, _Key]], chosen: dict[str, tuple[Any, str]]
) -> tuple[PeerSettings, LogSettings]:
    def values(section: str) -> dict[str, Any]:
        return {k: chosen[f"{section}.{k}"][0] for k in keys[section]}

    def changed(section: str) -> bool:
        return any(chosen[f"{section}.{k}"][1] != "default" for k in keys[section])

    try:
        top = values(PEER_SECTION)
        defaults = PeerSettings()
        hints = typing.get_type_hints(PeerSettings)
        for f in dataclasses.fields(PeerSettings):
            nested = _dataclass_of(hints[f.name])
            if nested is None:
                continue
            current = getattr(defaults, f.name)
            if current is None and not changed(f.name):
                top[f.name] = None
            elif current is None:
                top[f.name] = nested(**values(f.name))
            else:
                top[f.name] = dataclasses.replace(current, **values(f.name))
        return PeerSettings(**top), LogSettings(**values(LOG_SECTION))
    except (ValueError, TypeError) as exc:
        raise BadRequest(f"invalid settings: {exc}") from None


def _show(value: Any) -> Any:
    if isinstance(value, Address | Path):
        return str(value)
    if isinstance(value, tuple):
        return [_show(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _show(v) for k, v in value.items()}
    return value
