"""``/bundles/`` as WebDAV against a real peer: what PROPFIND bodies ask, dates, auth for WebDAV
clients, and the checks of litmus's ``basic`` and ``props`` suites that a read-mostly,
content-addressed collection can pass, made here against ``/bundles/`` itself (litmus proper
stops at its first step, ``MKCOL litmus/``: see docs/bundles.md)."""

from __future__ import annotations

import base64
import email.utils
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from disruptor.peer import Peer

from .test_bundles_functional import app_bundle, put

LITMUS_NS = "http://webdav.org/neon/litmus/"


@pytest.fixture
async def http(peer: Peer) -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": f"Bearer {peer.api_token}"}
    async with aiohttp.ClientSession(base_url=peer.url, headers=headers) as session:
        yield session


@pytest.fixture
async def stored(peer: Peer, http: aiohttp.ClientSession, tmp_path: Path) -> str:
    data, manifest = app_bundle(peer.home, tmp_path)
    assert (await put(http, manifest.sha1, data, manifest)).status == 201
    return manifest.sha1


async def propfind(
    http: aiohttp.ClientSession, path: str, body: str = "", depth: str = "0"
) -> tuple[int, ET.Element]:
    async with http.request("PROPFIND", path, data=body.encode(), headers={"Depth": depth}) as r:
        raw = await r.read()
        return r.status, ET.fromstring(raw)


def propstats(response: ET.Element) -> dict[str, dict[str, ET.Element]]:
    out: dict[str, dict[str, ET.Element]] = {}
    for propstat in response.findall("{DAV:}propstat"):
        status = (propstat.findtext("{DAV:}status") or "").split(" ")[1]
        prop = propstat.find("{DAV:}prop")
        assert prop is not None
        out[status] = {child.tag: child for child in prop}
    return out


async def test_the_last_modified_date_is_given_everywhere(
    http: aiohttp.ClientSession, stored: str, peer: Peer
) -> None:
    assert peer.store is not None
    created = peer.store.info(stored).created_at
    async with http.head(f"/bundles/{stored}") as r:
        last_modified = email.utils.parsedate_to_datetime(r.headers["Last-Modified"])
    assert int(last_modified.timestamp()) == int(created)
    status, root = await propfind(http, "/bundles/", depth="1")
    assert status == 207
    for response in root.findall("{DAV:}response"):
        value = propstats(response)["200"]["{DAV:}getlastmodified"].text
        assert value is not None and value.endswith(" GMT")  # RFC 1123, as clients parse it
        when = email.utils.parsedate_to_datetime(value).timestamp()
        if response.findtext("{DAV:}href") == f"/bundles/{stored}":
            assert int(when) == int(created)


async def test_propname_gives_names_and_prop_gives_what_was_asked(
    http: aiohttp.ClientSession, stored: str
) -> None:
    names = '<D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>'
    _, root = await propfind(http, f"/bundles/{stored}", names)
    (response,) = root.findall("{DAV:}response")
    found = propstats(response)
    assert set(found) == {"200"}
    assert "{DAV:}getcontentlength" in found["200"]
    assert all(e.text is None and len(e) == 0 for e in found["200"].values())
    asked = (
        '<D:propfind xmlns:D="DAV:" xmlns:L="http://webdav.org/neon/litmus/"><D:prop>'
        "<D:getetag/><L:foo/><D:getlastmodified/></D:prop></D:propfind>"
    )
    _, root = await propfind(http, f"/bundles/{stored}", asked)
    (response,) = root.findall("{DAV:}response")
    found = propstats(response)
    assert set(found["200"]) == {"{DAV:}getetag", "{DAV:}getlastmodified"}
    assert found["200"]["{DAV:}getetag"].text == f'"{stored}"'
    assert set(found["404"]) == {f"{{{LITMUS_NS}}}foo"}


async def test_litmus_props_checks_that_apply_to_a_read_only_collection(
    http: aiohttp.ClientSession, stored: str
) -> None:
    # propfind_invalid, propfind_invalid2: 400 for a body that is not well-formed, or that
    # undeclares a namespace prefix.
    for body in ("<foo>", '<D:propfind xmlns:D="DAV:"><D:prop><bar:foo xmlns:bar=""/></D:prop>'
                 "</D:propfind>"):  # fmt: skip
        async with http.request("PROPFIND", "/bundles/", data=body, headers={"Depth": "0"}) as r:
            assert r.status == 400
    # propfind_d0: Depth 0 on the collection names it, and it says it is a collection.
    named = (
        f'<propfind xmlns="DAV:" xmlns:L="{LITMUS_NS}"><prop><getcontentlength/>'
        "<getlastmodified/><displayname/><resourcetype/><L:foo/><L:bar/></prop></propfind>"
    )
    status, root = await propfind(http, "/bundles/", named)
    (response,) = root.findall("{DAV:}response")
    assert status == 207 and response.findtext("{DAV:}href") == "/bundles/"
    found = propstats(response)
    assert found["200"]["{DAV:}resourcetype"].find("{DAV:}collection") is not None
    assert set(found["404"]) == {"{DAV:}getcontentlength", f"{{{LITMUS_NS}}}foo",
                                 f"{{{LITMUS_NS}}}bar"}  # fmt: skip
    # propextended, propwformed: an extended propfind, and a property in a namespace of its
    # own, answered with well-formed XML.
    extended = (
        '<?xml version="1.0" encoding="utf-8" ?>'
        '<propfind xmlns="DAV:"><foobar/><allprop/></propfind>'
    )
    status, _ = await propfind(http, f"/bundles/{stored}", extended)
    assert status == 207
    odd = f'<propfind xmlns="DAV:"><prop><removeset xmlns="{LITMUS_NS}"/></prop></propfind>'
    status, root = await propfind(http, f"/bundles/{stored}", odd)
    assert status == 207 and root.find(".//{DAV:}status") is not None


async def test_litmus_basic_checks_that_apply_to_a_read_only_collection(
    http: aiohttp.ClientSession, stored: str
) -> None:
    # options: DAV class 1.
    async with http.options("/bundles/") as r:
        assert r.status == 200 and r.headers["DAV"].split(",")[0].strip() == "1"
    # delete_null: DELETE of a name that is not there is 404.
    async with http.delete(f"/bundles/{'4' * 40}") as r:
        assert r.status == 404
    # mkcol_over_plain, mkcol_again: MKCOL where a resource (or the collection) is fails, 405.
    for path in (f"/bundles/{stored}", "/bundles/"):
        async with http.request("MKCOL", path) as r:
            assert r.status == 405


async def test_webdav_clients_may_send_the_token_as_a_basic_password(
    peer: Peer, stored: str
) -> None:
    basic = base64.b64encode(f"anyone:{peer.api_token}".encode()).decode()
    wrong = base64.b64encode(b"anyone:not-the-token").decode()
    async with aiohttp.ClientSession(base_url=peer.url) as anon:
        async with anon.get(f"/bundles/{stored}", headers={"Authorization": f"Basic {basic}"}) as r:
            assert r.status == 200
        for headers in ({}, {"Authorization": f"Basic {wrong}"}, {"Authorization": "Basic !!"}):
            async with anon.request("PROPFIND", "/bundles/", headers=headers) as r:
                assert r.status == 401
                challenges = r.headers.getall("WWW-Authenticate")
                assert challenges[0].startswith("Basic realm=")
                assert any(c.startswith("Bearer") for c in challenges)
        # Only the WebDAV interface takes it: elsewhere the token is a bearer token.
        async with anon.get("/jobs", headers={"Authorization": f"Basic {basic}"}) as r:
            assert r.status == 401
            assert r.headers.getall("WWW-Authenticate") == ['Bearer realm="disruptor"']
