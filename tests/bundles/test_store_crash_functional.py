"""A peer process killed (SIGKILL) in the middle of an upload shows no trace of it on restart."""

from __future__ import annotations

import hashlib
import os
import socket
import urllib.request
from pathlib import Path

from disruptor.bundles.pack import pack_to_file
from disruptor.bundles.signing import load_or_create_key, sign_manifest
from disruptor.home import Home

from ..cluster import PeerProcess, free_port, wait_for
from .archives import make_app


def test_kill_mid_upload_then_restart(tmp_path: Path) -> None:
    home = Home(tmp_path / "home").ensure()
    key, _ = load_or_create_key(home.signing_key_path)
    archive = tmp_path / "b.tar.zst"
    pack_to_file(make_app(tmp_path / "app", {"blob": os.urandom(2 * 1024 * 1024)}), archive)
    data = archive.read_bytes()
    manifest = sign_manifest(
        key,
        sha1=hashlib.sha1(data).hexdigest(),
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        name="demo",
        version="1.0",
        signed_at=1,
    )
    port = free_port()
    store = home.root / "peers" / f"127.0.0.1_{port}" / "store"
    first = PeerProcess(home.root, port=port, log_dir=tmp_path).wait_ready()
    head = (
        f"PUT /bundles/{manifest.sha1} HTTP/1.1\r\nHost: {first.address}\r\n"
        f"Authorization: Bearer {first.token}\r\nContent-Length: {len(data)}\r\n"
        f"X-Disruptor-Manifest: {manifest.to_header()}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head + data[: len(data) // 2])

        def partial_on_disk() -> bool:
            parts = list((store / "tmp").glob("upload-*"))
            return bool(parts) and parts[0].stat().st_size > 0

        wait_for(partial_on_disk, 20, "the half-uploaded body on disk")
        first.kill()
    assert list((store / "tmp").iterdir()), "the crash left its temporary file"
    assert list((store / "blobs").iterdir()) == []

    second = PeerProcess(home.root, port=port, log_dir=tmp_path).wait_ready()
    try:
        assert list((store / "tmp").iterdir()) == []
        assert list((store / "blobs").iterdir()) == []
        assert list((store / "manifests").iterdir()) == []
        # The restarted peer takes the same upload whole.
        request = urllib.request.Request(
            f"{second.url}/bundles/{manifest.sha1}",
            data=data,
            method="PUT",
            headers={
                "Authorization": f"Bearer {second.token}",
                "X-Disruptor-Manifest": manifest.to_header(),
            },
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 201
        assert [p.name for p in (store / "blobs").iterdir()] == [f"{manifest.sha1}.tar.zst"]
        assert list((store / "tmp").iterdir()) == []
    finally:
        second.stop()
