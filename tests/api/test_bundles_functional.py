"""The ``/bundles/`` HTTP interface against a real peer on loopback, good and hostile input."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from yarl import URL

from disruptor.address import Address
from disruptor.bundles.pack import pack_to_file
from disruptor.bundles.settings import BundleSettings
from disruptor.bundles.signing import (
    SignedManifest,
    generate_key,
    load_or_create_key,
    sign_manifest,
)
from disruptor.home import Home
from disruptor.peer import Peer
from disruptor.settings import HttpSettings, PeerSettings

from ..bundles.archives import (
    MANIFEST,
    header,
    make_app,
    member,
    pax,
    tar,
    with_manifest,
    zst,
)
from ..cluster import eventually, free_port

PROBLEM = "urn:disruptor:problem:"


def sign_bytes(home: Home, data: bytes, *, key: object = None, **changes: object) -> SignedManifest:
    import hashlib

    signer = key if key is not None else load_or_create_key(home.signing_key_path)[0]
    fields: dict[str, object] = {
        "sha1": hashlib.sha1(data).hexdigest(),
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "name": "demo",
        "version": "1.0",
        "signed_at": 1_700_000_000,
    }
    fields.update(changes)
    return sign_manifest(signer, **fields)  # type: ignore[arg-type]


def app_bundle(home: Home, tmp_path: Path) -> tuple[bytes, SignedManifest]:
    archive = tmp_path / "good.tar.zst"
    pack_to_file(make_app(tmp_path / "app"), archive)
    data = archive.read_bytes()
    return data, sign_bytes(home, data)


def store_files(peer: Peer) -> list[str]:
    """Everything under the peer's state directory, for nothing-left-behind checks."""
    root = peer.state_dir
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def tree(path: Path) -> set[str]:
    return {str(p) for p in path.rglob("*")}


@pytest.fixture
async def http(peer: Peer) -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": f"Bearer {peer.api_token}"}
    async with aiohttp.ClientSession(base_url=peer.url, headers=headers) as session:
        yield session


async def put(
    http: aiohttp.ClientSession, sha1: str, data: bytes, manifest: SignedManifest | None,
    **headers: str,
) -> aiohttp.ClientResponse:  # fmt: skip
    send = dict(headers)
    if manifest is not None:
        send["X-Disruptor-Manifest"] = manifest.to_header()
    async with http.put(f"/bundles/{sha1}", data=data, headers=send) as response:
        await response.read()
        return response


async def problem(response: aiohttp.ClientResponse) -> str:
    assert response.headers["Content-Type"].startswith("application/problem+json")
    body = await response.json(content_type=None)
    assert body["detail"]
    return str(body["type"]).removeprefix(PROBLEM)


async def still_serves(http: aiohttp.ClientSession, peer: Peer, tmp_path: Path) -> None:
    """A good request still works, and no temporary file was left in the store."""
    assert list((peer.state_dir / "store" / "tmp").iterdir()) == []
    probe = tmp_path / f"probe-{os.urandom(4).hex()}"
    archive = probe / "good.tar.zst"
    probe.mkdir()
    pack_to_file(make_app(probe / "app", {"probe.txt": probe.name.encode()}), archive)
    data = archive.read_bytes()
    manifest = sign_bytes(peer.home, data)
    response = await put(http, manifest.sha1, data, manifest)
    assert response.status in (201, 204)
    async with http.get(f"/bundles/{manifest.sha1}") as r:
        assert r.status == 200 and await r.read() == data


# --- the good paths ---------------------------------------------------------------------------


async def test_put_get_head_range_propfind_delete(
    peer: Peer, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    data, manifest = app_bundle(peer.home, tmp_path)
    sha1 = manifest.sha1
    async with http.options("/bundles/") as r:
        assert r.status == 200 and r.headers["DAV"] == "1"
        assert "PROPFIND" in r.headers["Allow"]
    assert (await put(http, sha1, data, manifest)).status == 201
    again = await put(http, sha1, data, manifest)
    assert again.status == 204
    async with http.get(f"/bundles/{sha1}") as r:
        assert r.status == 200 and await r.read() == data
        assert r.headers["ETag"] == f'"{sha1}"'
        assert int(r.headers["Content-Length"]) == len(data)
    async with http.head(f"/bundles/{sha1}") as r:
        assert r.status == 200 and int(r.headers["Content-Length"]) == len(data)
    async with http.get(f"/bundles/{sha1}", headers={"Range": "bytes=10-19"}) as r:
        assert r.status == 206 and await r.read() == data[10:20]
        assert r.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
    async with http.get(f"/bundles/{sha1}", headers={"Range": "bytes=-5"}) as r:
        assert r.status == 206 and await r.read() == data[-5:]
    async with http.get(f"/bundles/{sha1}", headers={"Range": f"bytes={len(data)}-"}) as r:
        assert r.status == 416 and await problem(r) == "range-not-satisfiable"
        assert r.headers["Content-Range"] == f"bytes */{len(data)}"
    async with http.get(f"/bundles/{sha1}", headers={"If-None-Match": f'"{sha1}"'}) as r:
        assert r.status == 304
    async with http.get(f"/bundles/{sha1}/manifest") as r:
        assert SignedManifest.from_dict(await r.json()) == manifest
    for depth, count in (("0", 1), ("1", 2)):
        async with http.request("PROPFIND", "/bundles/", headers={"Depth": depth}) as r:
            assert r.status == 207
            root = ET.fromstring(await r.read())
            responses = root.findall("{DAV:}response")
            assert len(responses) == count
    entry = responses[1]
    assert entry.findtext("{DAV:}href") == f"/bundles/{sha1}"
    prop = entry.find("{DAV:}propstat/{DAV:}prop")
    assert prop is not None
    assert prop.findtext("{DAV:}getcontentlength") == str(len(data))
    assert prop.findtext("{DAV:}getetag") == f'"{sha1}"'
    assert prop.findtext("{DAV:}creationdate")
    assert prop.findtext("{urn:disruptor:bundle}name") == "demo"
    assert prop.findtext("{urn:disruptor:bundle}version") == "1.0"
    assert prop.findtext("{urn:disruptor:bundle}signer") == manifest.key_id
    body = b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'
    async with http.request("PROPFIND", f"/bundles/{sha1}", data=body, headers={"Depth": "0"}) as r:
        assert r.status == 207
    async with http.delete(f"/bundles/{sha1}") as r:
        assert r.status == 204
    async with http.get(f"/bundles/{sha1}") as r:
        assert r.status == 404 and await problem(r) == "not-found"


async def test_concurrent_uploads_of_one_bundle_both_succeed(
    peer: Peer, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    data, manifest = app_bundle(peer.home, tmp_path)
    statuses = sorted(
        r.status for r in await asyncio.gather(*(put(http, manifest.sha1, data, manifest)
                                                 for _ in range(2)))
    )  # fmt: skip
    assert statuses in ([201, 204], [201, 201])
    assert peer.store is not None
    assert [p.name for p in peer.store.blobs_dir.iterdir()] == [f"{manifest.sha1}.tar.zst"]
    assert list(peer.store.tmp_dir.iterdir()) == []


# --- bad input: each a 4xx problem, nothing left behind, the peer keeps serving -----------------


MALFORMED_PATHS = [
    "/bundles/..%2f..%2fetc%2fpasswd",  # encoded traversal
    "/bundles/%2e%2e%2f%2e%2e%2fetc",  # encoded dots
    "/bundles/" + "a" * 39,  # wrong length
    "/bundles/" + "a" * 41,
    "/bundles/" + "A" * 40,  # upper case
    "/bundles/" + "a" * 39 + "%00",  # NUL
    "/bundles/" + "a" * 40 + "/other",
    "/bundles/" + "%61" * 40,  # a valid name, but percent-encoded
]


async def test_malformed_names(peer: Peer, http: aiohttp.ClientSession, tmp_path: Path) -> None:
    before = tree(tmp_path)
    for raw_path in MALFORMED_PATHS:
        for method in ("GET", "PUT", "DELETE", "PROPFIND"):
            async with http.request(
                method, URL(raw_path, encoded=True), data=b"x", headers={"Depth": "0"}
            ) as r:
                assert r.status == 400, (method, raw_path)
                assert await problem(r) == "invalid-name", (method, raw_path)
    assert tree(tmp_path) == before
    await still_serves(http, peer, tmp_path)


async def test_literal_dot_dot_never_leaves_the_api(
    peer: Peer, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    async with http.get(URL("/bundles/../../etc/passwd", encoded=True)) as r:
        assert 400 <= r.status < 500
        assert r.headers["Content-Type"].startswith("application/problem+json")
    await still_serves(http, peer, tmp_path)


def _hostile(home: Home, case: str, data: bytes, manifest: SignedManifest) -> tuple[
    str, bytes, SignedManifest | None, dict[str, str]
]:  # fmt: skip
    sha1 = manifest.sha1
    if case == "wrong-sha1-in-url":
        return "0" * 40, data, manifest, {}
    if case == "body-not-matching-url":
        other = sign_bytes(home, data, sha1="1" * 40)
        return "1" * 40, data, other, {}
    if case == "sha256-mismatch":
        return sha1, data, sign_bytes(home, data, sha256="f" * 64), {}
    if case == "missing-signature":
        return sha1, data, None, {}
    if case == "bad-signature":
        return sha1, data, replace(manifest, signature="A" * 86), {}
    if case == "untrusted-signer":
        return sha1, data, sign_bytes(home, data, key=generate_key()), {}
    if case == "compressed-body":
        return sha1, data, manifest, {"Content-Encoding": "gzip"}
    if case == "manifest-not-base64":
        return sha1, data, manifest, {"X-Disruptor-Manifest": "%%%"}
    if case == "manifest-not-json":
        text = base64.urlsafe_b64encode(b"{nope").decode()
        return sha1, data, manifest, {"X-Disruptor-Manifest": text}
    raise AssertionError(case)


@pytest.mark.parametrize(
    ("case", "status", "slug"),
    [
        ("wrong-sha1-in-url", 422, "digest-mismatch"),
        ("body-not-matching-url", 422, "digest-mismatch"),
        ("sha256-mismatch", 422, "digest-mismatch"),
        ("missing-signature", 422, "signature-invalid"),
        ("bad-signature", 422, "signature-invalid"),
        ("untrusted-signer", 403, "untrusted-signer"),
        ("compressed-body", 415, "unsupported-media-type"),
        ("manifest-not-base64", 422, "manifest-invalid"),
        ("manifest-not-json", 422, "manifest-invalid"),
    ],
)
async def test_bad_uploads(
    peer: Peer, http: aiohttp.ClientSession, tmp_path: Path, case: str, status: int, slug: str
) -> None:
    data, manifest = app_bundle(peer.home, tmp_path)
    sha1, body, sent, headers = _hostile(peer.home, case, data, manifest)
    if "X-Disruptor-Manifest" in headers:
        sent = None
    before = tree(tmp_path)
    response = await put(http, sha1, body, sent, **headers)
    assert response.status == status
    async with http.get(f"/bundles/{sha1}") as r:
        assert r.status == 404
    assert peer.store is not None and peer.store.sha1s() == set()
    assert tree(tmp_path) - before <= set()
    await still_serves(http, peer, tmp_path)
    # The problem type itself, from a fresh request (the first response was consumed).
    async with http.put(
        f"/bundles/{sha1}",
        data=body,
        headers={**headers, **({"X-Disruptor-Manifest": sent.to_header()} if sent else {})},
    ) as r:
        assert await problem(r) == slug


def _archive_cases() -> dict[str, bytes]:
    return {
        "invalid-zstd": b"\x28\xb5\x2f\xfd garbage garbage garbage",
        "not-zstd": b"plain bytes, not a bundle",
        "not-a-tar": zst(b"hello world " * 100),
        "truncated-zstd": zst(with_manifest(member("x", os.urandom(5000))))[:-20],
        "trailing-data": zst(with_manifest()) + b"more",
        "absolute-path": zst(with_manifest(member("/etc/evil", b"x"))),
        "dot-dot": zst(with_manifest(member("../evil", b"x"))),
        "pax-dot-dot": zst(with_manifest(pax({"path": "a/../../evil"}), member("x", b"1"))),
        "symlink-outside": zst(with_manifest(header("l", typeflag=b"2", linkname=b"/etc"))),
        "hard-link": zst(with_manifest(header("h", typeflag=b"1", linkname=b"bundle.toml"))),
        "device": zst(with_manifest(header("d", typeflag=b"3"))),
        "fifo": zst(with_manifest(header("f", typeflag=b"6"))),
        "setuid": zst(with_manifest(member("s", b"x", mode=0o4755))),
        "duplicate": zst(with_manifest(member("x", b"1"), member("x", b"2"))),
        "case-collision": zst(with_manifest(member("x", b"1"), member("X", b"2"))),
        "bomb": zst(with_manifest(member("zeros", bytes(8 << 20)))),
        "truncated-tar": zst(tar(member("bundle.toml", MANIFEST.encode()), end=b"")),
    }


async def test_archive_attacks(home: Home, tmp_path: Path) -> None:
    """Every hostile archive, signed by a trusted key, is refused; one peer serves them all."""
    limits = BundleSettings(file_bytes_max=1 << 20, unpacked_bytes_max=2 << 20)
    config = PeerSettings(address=Address("127.0.0.1", free_port()), home=home.root, bundles=limits)
    peer = Peer(config)
    await peer.start()
    try:
        headers = {"Authorization": f"Bearer {peer.api_token}"}
        async with aiohttp.ClientSession(base_url=peer.url, headers=headers) as http:
            for case, data in sorted(_archive_cases().items()):
                manifest = sign_bytes(home, data)
                before = tree(tmp_path)
                async with http.put(
                    f"/bundles/{manifest.sha1}",
                    data=data,
                    headers={"X-Disruptor-Manifest": manifest.to_header()},
                ) as r:
                    assert r.status == 422, case
                    assert await problem(r) == "archive-unsafe", case
                assert tree(tmp_path) == before, case
                assert peer.store is not None and peer.store.sha1s() == set(), case
                assert list(peer.store.tmp_dir.iterdir()) == [], case
            await still_serves(http, peer, tmp_path)
    finally:
        await peer.stop()


async def test_missing_or_mismatched_bundle_toml(
    peer: Peer, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    for data in (zst(tar(member("x.py", b"1"))), zst(tar(member("bundle.toml", b"name=")))):
        manifest = sign_bytes(peer.home, data)
        async with http.put(
            f"/bundles/{manifest.sha1}",
            data=data,
            headers={"X-Disruptor-Manifest": manifest.to_header()},
        ) as r:
            assert r.status == 422 and await problem(r) == "manifest-invalid"
    data = zst(with_manifest())
    manifest = sign_bytes(peer.home, data, name="someone-else")
    async with http.put(
        f"/bundles/{manifest.sha1}",
        data=data,
        headers={"X-Disruptor-Manifest": manifest.to_header()},
    ) as r:
        assert r.status == 422 and await problem(r) == "manifest-invalid"
    await still_serves(http, peer, tmp_path)


async def test_body_over_the_size_limit(home: Home, tmp_path: Path) -> None:
    limits = BundleSettings(upload_bytes_max=64 * 1024)
    config = PeerSettings(address=Address("127.0.0.1", free_port()), home=home.root, bundles=limits)
    peer = Peer(config)
    await peer.start()
    try:
        headers = {"Authorization": f"Bearer {peer.api_token}"}
        async with aiohttp.ClientSession(base_url=peer.url, headers=headers) as http:
            big = os.urandom(256 * 1024)
            manifest = sign_bytes(home, big)
            # Declared too large: refused before reading.
            response = await put(http, manifest.sha1, big, manifest)
            assert response.status == 413

            # Not declared (chunked): refused while streaming, once the count passes the limit.
            async def chunks() -> AsyncIterator[bytes]:
                for i in range(0, len(big), 16 * 1024):
                    yield big[i : i + 16 * 1024]

            async with http.put(
                f"/bundles/{manifest.sha1}",
                data=chunks(),
                headers={"X-Disruptor-Manifest": manifest.to_header()},
            ) as r:
                assert r.status == 413 and await problem(r) == "payload-too-large"
            await still_serves(http, peer, tmp_path)
    finally:
        await peer.stop()


def _raw_put_head(peer: Peer, sha1: str, manifest: SignedManifest, length: int) -> bytes:
    return (
        f"PUT /bundles/{sha1} HTTP/1.1\r\nHost: {peer.address}\r\n"
        f"Authorization: Bearer {peer.api_token}\r\nContent-Length: {length}\r\n"
        f"X-Disruptor-Manifest: {manifest.to_header()}\r\n\r\n"
    ).encode()


async def test_client_disconnecting_half_way(
    peer: Peer, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    data = os.urandom(512 * 1024)
    manifest = sign_bytes(peer.home, data)
    assert peer.store is not None
    tmp_dir = peer.store.tmp_dir
    _reader, writer = await asyncio.open_connection(peer.address.host, peer.address.port)
    writer.write(_raw_put_head(peer, manifest.sha1, manifest, len(data)) + data[: len(data) // 2])
    await writer.drain()
    await eventually(lambda: any(tmp_dir.iterdir()), "the upload's temporary file")
    writer.transport.abort()  # a reset, as when a client dies
    await eventually(lambda: not any(tmp_dir.iterdir()), "the temporary file to be removed")
    assert peer.store.sha1s() == set()
    await still_serves(http, peer, tmp_path)


async def test_truncated_body(peer: Peer, http: aiohttp.ClientSession, tmp_path: Path) -> None:
    data = os.urandom(64 * 1024)
    manifest = sign_bytes(peer.home, data)
    reader, writer = await asyncio.open_connection(peer.address.host, peer.address.port)
    writer.write(_raw_put_head(peer, manifest.sha1, manifest, len(data)) + data[:1000])
    await writer.drain()
    writer.write_eof()  # says "that is all" with 63 KiB still owed
    answer = await asyncio.wait_for(reader.read(), 20)
    writer.close()
    await writer.wait_closed()
    status = answer.split(b"\r\n", 1)[0]
    assert status == b"" or b" 400 " in status  # answered 400, or closed: never stored
    assert peer.store is not None and peer.store.sha1s() == set()
    await eventually(lambda: not any(peer.store.tmp_dir.iterdir()), "no temporary file")  # type: ignore[union-attr]
    await still_serves(http, peer, tmp_path)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<D:propfind xmlns:D="DAV:"><D:prop><D:displayname>&lol3;</D:displayname></D:prop></D:propfind>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<D:propfind xmlns:D="DAV:"><D:prop><D:displayname>&xxe;</D:displayname></D:prop></D:propfind>"""


HOSTILE_XML = [
    BILLION_LAUGHS,
    EXTERNAL_ENTITY,
    # An internal entity in UTF-16: no byte search for "<!DOCTYPE" finds it.
    '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE p [<!ENTITY a "b">]>'
    '<D:propfind xmlns:D="DAV:"><D:prop><D:displayname>&a;</D:displayname></D:prop>'
    "</D:propfind>".encode("utf-16"),
    BILLION_LAUGHS.decode().replace('"1.0"', '"1.0" encoding="UTF-16"').encode("utf-16"),
    '<!DOCTYPE p><D:propfind xmlns:D="DAV:"/>'.encode("utf-32"),
    b"<D:propfind xmlns:D='DAV:'>",  # not well-formed
    b"<other/>",  # not a propfind
    b'<!doctype x SYSTEM "http://example.invalid/x.dtd"><x/>',  # an external DTD
]


async def test_hostile_propfind_xml(
    peer: Peer, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    for body in HOSTILE_XML:
        async with http.request("PROPFIND", "/bundles/", data=body, headers={"Depth": "1"}) as r:
            assert r.status == 400, body
            assert await problem(r) == "invalid-payload", body
    await still_serves(http, peer, tmp_path)


async def test_depth_infinity_is_forbidden(peer: Peer, http: aiohttp.ClientSession) -> None:
    json_only = {"Accept": "application/problem+json"}
    for headers in ({"Depth": "infinity", **json_only}, json_only):
        async with http.request("PROPFIND", "/bundles/", headers=headers) as r:
            assert r.status == 403 and await problem(r) == "forbidden"
    # A WebDAV client (no Accept, */*, or XML) gets RFC 4918's DAV:error naming the
    # precondition, with the problem details inside it (RFC 7807's XML form).
    for accept in ("", "*/*", "text/xml", "application/xml, application/json;q=0.5"):
        headers = {"Depth": "infinity", "Accept": accept}
        async with http.request("PROPFIND", "/bundles/", headers=headers) as r:
            assert r.status == 403 and r.content_type == "application/xml", accept
            root = ET.fromstring(await r.read())
        assert root.tag == "{DAV:}error"
        assert root.find("{DAV:}propfind-finite-depth") is not None
        details = root.find("{urn:ietf:rfc:7807}problem")
        assert details is not None
        assert details.findtext("{urn:ietf:rfc:7807}type") == PROBLEM + "forbidden"
        assert details.findtext("{urn:ietf:rfc:7807}status") == "403"
        assert "Depth" in (details.findtext("{urn:ietf:rfc:7807}detail") or "")


async def test_token_required(peer: Peer, tmp_path: Path) -> None:
    data, manifest = app_bundle(peer.home, tmp_path)
    async with aiohttp.ClientSession(base_url=peer.url) as anon:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            for method in ("GET", "PUT", "PROPFIND", "DELETE"):
                async with anon.request(
                    method, f"/bundles/{manifest.sha1}", data=data, headers=headers
                ) as r:
                    assert r.status == 401 and await problem(r) == "unauthorized"
    assert peer.store is not None and peer.store.sha1s() == set()


async def test_unknown_method_and_path(peer: Peer, http: aiohttp.ClientSession) -> None:
    # Methods that would create, change or lock names are not allowed anywhere, whatever the
    # name: RFC 4918 clients expect 405 (with Allow), not a complaint about the name.
    for method in ("MKCOL", "PROPPATCH", "COPY", "MOVE", "LOCK", "UNLOCK"):
        for path in ("/bundles/", "/bundles/" + "a" * 40, "/bundles/litmus/", "/bundles/x/y"):
            async with http.request(method, path) as r:
                assert r.status == 405 and await problem(r) == "method-not-allowed", path
                assert "OPTIONS" in r.headers["Allow"] and method not in r.headers["Allow"]
    async with http.get("/elsewhere/" + "a" * 40) as r:
        assert r.status == 404 and await problem(r) == "not-found"


async def test_insecure_dev_peer_accepts_unsigned(home: Home, tmp_path: Path) -> None:
    config = PeerSettings(
        address=Address("127.0.0.1", free_port()), home=home.root, insecure_dev=True
    )
    peer = Peer(config)
    await peer.start()
    try:
        data, manifest = app_bundle(home, tmp_path)
        headers = {"Authorization": f"Bearer {peer.api_token}"}
        async with aiohttp.ClientSession(base_url=peer.url, headers=headers) as http:
            assert (await put(http, manifest.sha1, data, None)).status == 201
            async with http.get(f"/bundles/{manifest.sha1}/manifest") as r:
                body = await r.json()
                assert body["signature"] == "" and body["name"] == "demo"
    finally:
        await peer.stop()


async def test_slow_header_trickler_is_dropped_while_others_are_served(
    home: Home, tmp_path: Path
) -> None:
    config = PeerSettings(
        address=Address("127.0.0.1", free_port()),
        home=home.root,
        http=HttpSettings(header_timeout_s=1.0),
    )
    peer = Peer(config)
    await peer.start()
    loop = asyncio.get_running_loop()
    sock = socket.create_connection((peer.address.host, peer.address.port))
    sock.setblocking(False)
    try:
        closed = loop.create_future()

        async def trickle() -> None:
            head = f"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: {'y' * 200}\r\n".encode()
            for byte in head:
                try:
                    await loop.sock_sendall(sock, bytes([byte]))
                except OSError:
                    break
                # The attack itself: a byte every 50 ms, for longer than the timeout.
                await asyncio.sleep(0.05)

        async def watch() -> None:
            data = await loop.sock_recv(sock, 1024)
            closed.set_result(data)

        trickler = asyncio.create_task(trickle())
        watcher = asyncio.create_task(watch())
        headers = {"Authorization": f"Bearer {peer.api_token}"}
        async with (
            aiohttp.ClientSession(base_url=peer.url, headers=headers) as http,
            http.get("/bundles/") as r,
        ):
            assert r.status == 200  # served while the trickler holds its connection
        assert await asyncio.wait_for(closed, 20) == b""  # closed without an answer
        trickler.cancel()
        await asyncio.gather(trickler, watcher, return_exceptions=True)
        assert not closed.cancelled()
    finally:
        sock.close()
        await peer.stop()


async def test_manifest_json_endpoint(
    peer: Peer, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    data, manifest = app_bundle(peer.home, tmp_path)
    await put(http, manifest.sha1, data, manifest)
    async with http.get(f"/bundles/{manifest.sha1}/manifest") as r:
        body = await r.json()
    assert body == json.loads(manifest.to_json())
    async with http.get(f"/bundles/{'e' * 40}/manifest") as r:
        assert r.status == 404
