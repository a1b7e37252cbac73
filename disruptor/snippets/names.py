"""What names a snippet: the SHA-1 of its source, checked, and the source's size bound.

Light on purpose (no RestrictedPython): the peer names and stores snippets; only the host
processes compile them.
"""

from __future__ import annotations

import hashlib
import re

from ..errors import InvalidName, PayloadTooLarge

SHA1_PATTERN = re.compile(r"^[0-9a-f]{40}$")


def snippet_sha1(source: str) -> str:
    return hashlib.sha1(source.encode("utf-8")).hexdigest()  # noqa: S324 - a name, not a MAC


def snippet_filename(sha1: str) -> str:
    return f"<snippet {sha1}>"


def check_sha1(sha1: str) -> str:
    if not SHA1_PATTERN.match(sha1):
        raise InvalidName(f"{sha1[:60]!r} is not a SHA-1 hex name (40 lowercase hex digits)")
    return sha1


def check_source_size(source: str, source_bytes_max: int) -> None:
    if len(source) > source_bytes_max or len(source.encode("utf-8")) > source_bytes_max:
        raise PayloadTooLarge(f"snippet source is larger than {source_bytes_max} bytes")
