"""The client's snippet calls: store a snippet by its SHA-1 name, and read one back."""

from __future__ import annotations

import hashlib

from .transport import Transport


class SnippetsMixin(Transport):
    async def put_snippet(self, source: str) -> str:
        """Store ``source`` on the peer (it must compile there); returns its SHA-1 name."""
        data = source.encode("utf-8")
        sha1 = hashlib.sha1(data).hexdigest()  # noqa: S324 - a content name, not a MAC
        response = await self.request(
            "PUT",
            f"/snippets/{sha1}",
            data=data,
            headers={"Content-Type": "text/x-python; charset=utf-8"},
        )
        response.release()
        return sha1

    async def get_snippet(self, sha1: str) -> str:
        """The source of the stored snippet ``sha1``."""
        response = await self.request("GET", f"/snippets/{sha1}")
        async with response:
            return await response.text(encoding="utf-8")
