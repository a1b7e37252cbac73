from __future__ import annotations

import email.utils
import xml.etree.ElementTree as ET

import pytest
from aiohttp.test_utils import make_mocked_request

from disruptor.api.webdav import (
    ALLPROP,
    Propfind,
    bundle_properties,
    collection_properties,
    http_date,
    multistatus,
    parse_propfind,
    takes_xml,
)
from disruptor.bundles.store import BundleInfo
from disruptor.errors import InvalidPayload

INFO = BundleInfo(
    sha1="a" * 40,
    size=1234,
    name="demo",
    version="1.0",
    key_id="0123456789abcdef",
    signed_at=1_700_000_000,
    created_at=1_700_000_123.5,
)


def parse(body: str) -> Propfind:
    return parse_propfind(body.encode())


def test_what_a_propfind_asks() -> None:
    assert parse("") == ALLPROP
    assert parse('<propfind xmlns="DAV:"><allprop/></propfind>') == ALLPROP
    assert parse('<D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>').kind == "propname"
    ask = parse(
        '<D:propfind xmlns:D="DAV:"><D:prop><D:getlastmodified/><x:y xmlns:x="urn:x"/>'
        '<plain xmlns=""/></D:prop></D:propfind>'
    )
    assert ask == Propfind("prop", ("{DAV:}getlastmodified", "{urn:x}y", "plain"))
    # Unknown elements beside the request are extensions, ignored (RFC 4918, section 17).
    assert parse('<propfind xmlns="DAV:"><foobar/><allprop/></propfind>') == ALLPROP


@pytest.mark.parametrize(
    "body",
    [
        "<foo>",  # not well-formed
        '<D:propfind xmlns:D="DAV:"><D:prop><bar:foo xmlns:bar=""/></D:prop></D:propfind>',
        "<other/>",
        '<propfind xmlns="DAV:"/>',
        '<propfind xmlns="DAV:"><allprop/><propname/></propfind>',
        '<!DOCTYPE p [<!ENTITY a "b">]><propfind xmlns="DAV:"><allprop/></propfind>',
        '<!DOCTYPE p SYSTEM "http://example.invalid/p.dtd"><propfind xmlns="DAV:"/>',
    ],
)
def test_bad_or_hostile_bodies_are_invalid(body: str) -> None:
    for encoding in ("utf-8", "utf-16", "utf-16-be", "utf-32"):
        raw = body.encode(encoding)
        if encoding == "utf-16-be":
            raw = ('<?xml version="1.0" encoding="UTF-16BE"?>' + body).encode(encoding)
        with pytest.raises(InvalidPayload):
            parse_propfind(raw)


def props_of(response_body: bytes) -> list[tuple[str, dict[str, str | None]]]:
    root = ET.fromstring(response_body)
    out = []
    for propstat in root.iter("{DAV:}propstat"):
        status = propstat.findtext("{DAV:}status") or ""
        prop = propstat.find("{DAV:}prop")
        assert prop is not None
        out.append((status, {child.tag: child.text for child in prop}))
    return out


def test_allprop_propname_and_named_properties() -> None:
    resources = [("/bundles/", collection_properties(1_700_000_000.0))]
    resources.append(("/bundles/" + "a" * 40, bundle_properties(INFO)))
    every = props_of(multistatus(ALLPROP, resources).body)  # type: ignore[arg-type]
    assert [status for status, _ in every] == ["HTTP/1.1 200 OK"] * 2
    bundle = every[1][1]
    assert bundle["{DAV:}getcontentlength"] == "1234"
    assert bundle["{DAV:}getlastmodified"] == "Tue, 14 Nov 2023 22:15:23 GMT"
    assert bundle["{DAV:}creationdate"] == "2023-11-14T22:15:23Z"
    assert bundle["{urn:disruptor:bundle}signer"] == "0123456789abcdef"
    names = props_of(multistatus(Propfind("propname"), resources).body)  # type: ignore[arg-type]
    assert set(names[1][1]) == set(bundle) and all(v is None for v in names[1][1].values())
    ask = Propfind("prop", ("{DAV:}getetag", "{urn:x}nope", "{DAV:}getlastmodified"))
    named = props_of(multistatus(ask, resources[1:]).body)  # type: ignore[arg-type]
    assert named == [
        ("HTTP/1.1 200 OK", {"{DAV:}getetag": f'"{"a" * 40}"', "{DAV:}getlastmodified": ANY}),
        ("HTTP/1.1 404 Not Found", {"{urn:x}nope": None}),
    ]


class _Any:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and bool(other)


ANY: str = _Any()  # type: ignore[assignment]


def test_dates_are_what_clients_parse() -> None:
    assert http_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT"
    parsed = email.utils.parsedate_to_datetime(http_date(INFO.created_at))
    assert parsed.timestamp() == int(INFO.created_at)


@pytest.mark.parametrize(
    ("accept", "xml"),
    [
        (None, True),
        ("*/*", True),
        ("text/xml", True),
        ("application/xml;q=0.9, application/problem+json;q=0.8", True),
        ("application/problem+json", False),
        ("application/json", False),
        ("application/json, */*;q=0.1", False),
        ("text/html", False),
    ],
)
def test_who_takes_xml(accept: str | None, xml: bool) -> None:
    headers = {} if accept is None else {"Accept": accept}
    request = make_mocked_request("PROPFIND", "/bundles/", headers=headers)
    assert takes_xml(request) is xml
