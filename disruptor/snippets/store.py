"""Stored snippets: ``<state dir>/snippets/<sha1>.py``, bounded in count, named by content.

Rule: a snippet is stored only under the SHA-1 of its UTF-8 source, checked here, so a name always
means the same text; the store never holds more than ``count_max`` snippets (the least recently
used go first) of at most ``source_bytes_max`` bytes each, and writes only inside its directory,
atomically (temporary file, then rename).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import InvalidPayload, NotFound
from .names import check_sha1, check_source_size, snippet_sha1


class SnippetStore:
    def __init__(self, root: Path, count_max: int, source_bytes_max: int) -> None:
        self.root = root
        self.count_max = count_max
        self.source_bytes_max = source_bytes_max

    def _path(self, sha1: str) -> Path:
        return self.root / f"{check_sha1(sha1)}.py"

    def has(self, sha1: str) -> bool:
        return self._path(sha1).is_file()

    def get(self, sha1: str) -> str:
        path = self._path(sha1)
        try:
            source = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise NotFound(f"no snippet {sha1} on this peer") from None
        # Reading counts as use: the least recently used snippets are evicted first.
        os.utime(path)
        return source

    def put(self, source: str, sha1: str | None = None) -> tuple[str, bool]:
        """Store ``source``; returns (its SHA-1, whether it was new)."""
        check_source_size(source, self.source_bytes_max)
        actual = snippet_sha1(source)
        if sha1 is not None and check_sha1(sha1) != actual:
            raise InvalidPayload(f"the snippet's SHA-1 is {actual}, not {sha1}")
        path = self._path(actual)
        if path.is_file():
            os.utime(path)
            return actual, False
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._evict(keep=self.count_max - 1)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-", suffix=".py")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(source)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return actual, True

    def count(self) -> int:
        return len(self._stored())

    def _stored(self) -> list[tuple[float, Path]]:
        """Stored snippets with their last use. Another put's temporary file (``.tmp-*``) is
        not one, and a file removed meanwhile by a concurrent put is skipped."""
        found = []
        for path in self.root.glob("[!.]*.py") if self.root.is_dir() else ():
            try:
                found.append((path.stat().st_mtime, path))
            except FileNotFoundError:
                continue
        return found

    def _evict(self, keep: int) -> None:
        files = sorted(self._stored())
        for _, path in files[: max(0, len(files) - keep)]:
            path.unlink(missing_ok=True)
