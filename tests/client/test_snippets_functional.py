"""``SnippetsMixin`` through the blocking ``Client``: store, read back, run by name."""

from __future__ import annotations

import asyncio

import pytest

from disruptor.client import Client
from disruptor.errors import NotFound
from disruptor.home import Home
from disruptor.peer import Peer

SOURCE = "def handle(item):\n    return item.upper()\n"


async def test_put_get_and_run_by_name_with_the_blocking_client(peer: Peer, home: Home) -> None:
    def use_client() -> tuple[str, str, list[object]]:
        with Client(peer.url, home=home) as client:
            sha1 = client.put_snippet(SOURCE)
            text = client.get_snippet(sha1)
            reply = client.request_json(
                "POST", "/jobs", json_body={"snippet_sha1": sha1, "items": ["a", "b"]}
            )
            with pytest.raises(NotFound):
                client.get_snippet("f" * 40)
            return sha1, text, reply["values"]

    # The client blocks; the peer runs on this test's loop, so the client runs in a thread.
    sha1, text, values = await asyncio.to_thread(use_client)
    assert len(sha1) == 40 and text == SOURCE and values == ["A", "B"]
