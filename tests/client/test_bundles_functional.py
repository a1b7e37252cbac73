"""The client's bundle calls against a real in-process peer."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from disruptor.bundles.pack import pack_to_file
from disruptor.client import AsyncClient
from disruptor.errors import InvalidName, NotFound, UntrustedSigner
from disruptor.home import Home
from disruptor.peer import Peer

from ..bundles.archives import make_app


async def test_push_directory_list_pull_delete(peer: Peer, home: Home, tmp_path: Path) -> None:
    app = make_app(tmp_path / "app")
    seen: list[tuple[int, int]] = []
    async with AsyncClient(str(peer.address), home=home) as client:
        result = await client.push_bundle(app, progress=lambda n, total: seen.append((n, total)))
        assert result.created
        assert sum(n for n, _ in seen) == result.size == seen[0][1]
        expected = pack_to_file(app, tmp_path / "same.tar.zst")
        assert result.sha1 == expected.sha1  # what was pushed is the deterministic pack
        again = await client.push_bundle(app)
        assert (again.sha1, again.created) == (result.sha1, False)
        [listed] = await client.list_bundles()
        assert (listed["sha1"], listed["name"], listed["version"]) == (result.sha1, "demo", "1.0")
        manifest = await client.bundle_manifest(result.sha1)
        assert manifest.sha1 == result.sha1 and manifest.signed
        out = await client.pull_bundle(result.sha1, tmp_path / "pulled.tar.zst")
        assert hashlib.sha1(out.read_bytes()).hexdigest() == result.sha1
        # A ready archive can be pushed as it is.
        await client.delete_bundle(result.sha1)
        assert await client.list_bundles() == []
        assert (await client.push_bundle(tmp_path / "same.tar.zst")).created
        with pytest.raises(NotFound):
            await client.pull_bundle("b" * 40, tmp_path / "nothing")
        assert not (tmp_path / "nothing").exists()
        with pytest.raises(InvalidName):
            await client.delete_bundle("XYZ")


async def test_push_signed_by_an_untrusted_key_is_refused(
    peer: Peer, home: Home, tmp_path: Path
) -> None:
    from disruptor.bundles.signing import generate_key

    async with AsyncClient(str(peer.address), home=home) as client:
        with pytest.raises(UntrustedSigner):
            await client.push_bundle(make_app(tmp_path / "app"), key=generate_key())
        assert await client.list_bundles() == []
