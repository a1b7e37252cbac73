"""WebDAV's XML for ``/bundles/``: PROPFIND requests read safely, properties, multistatus replies
and ``DAV:error`` bodies (RFC 4918).

A PROPFIND body asks for every property (``allprop``, or no body at all), for their names only
(``propname``), or for named properties (``prop``): those a resource has come back in a 200
``propstat`` with their values, the others in a 404 ``propstat``, empty. A refusal with a WebDAV
precondition (Depth: infinity) is a ``DAV:error`` naming the precondition to a client that takes
XML, with the problem details inside it in RFC 7807's XML form, so one body carries both.

Rule: request XML is parsed only by defusedxml with DTDs, entity declarations and external
references forbidden, whatever its encoding (the parser decodes UTF-16 and the rest itself, so no
byte-level test can be fooled); anything else is ``InvalidPayload`` (400). The live properties are
computed from the store's ``BundleInfo``; nothing is stored per property (no PROPPATCH).
"""

from __future__ import annotations

import datetime
import email.utils
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

from ..bundles.store import BundleInfo
from ..errors import DisruptorError, InvalidPayload

DAV_NS = "DAV:"
BUNDLE_NS = "urn:disruptor:bundle"
# RFC 7807, appendix A: the XML form of problem details.
PROBLEM_XML_NS = "urn:ietf:rfc:7807"
XML_CONTENT_TYPE = "application/xml"
BUNDLE_CONTENT_TYPE = "application/zstd"
D = f"{{{DAV_NS}}}"
B = f"{{{BUNDLE_NS}}}"

ET.register_namespace("D", DAV_NS)
ET.register_namespace("B", BUNDLE_NS)
ET.register_namespace("P", PROBLEM_XML_NS)


@dataclass(frozen=True)
class Propfind:
    """What a PROPFIND asks: every property, their names, or the named ones (Clark notation)."""

    kind: Literal["allprop", "propname", "prop"]
    names: tuple[str, ...] = ()


ALLPROP = Propfind("allprop")


def parse_propfind(body: bytes) -> Propfind:
    """The request a PROPFIND body makes (an empty body means ``allprop``)."""
    if not body.strip():
        return ALLPROP
    try:
        import defusedxml.ElementTree as SafeET  # on the first PROPFIND with a body only
        from defusedxml import DefusedXmlException

        root = SafeET.fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        detail = "XML with a DTD, entity declarations or external references is refused"
        raise InvalidPayload(detail) from None
    except ET.ParseError as exc:
        raise InvalidPayload(f"PROPFIND body is not well-formed XML: {exc}") from None
    if root.tag != f"{D}propfind":
        raise InvalidPayload("PROPFIND body must be a DAV: propfind element")
    # Elements of other names are extensions a server ignores (RFC 4918, section 17).
    asks = [child for child in root if child.tag in (f"{D}allprop", f"{D}propname", f"{D}prop")]
    if len(asks) != 1:
        raise InvalidPayload("PROPFIND body needs exactly one of allprop, propname or prop")
    ask = asks[0]
    if ask.tag == f"{D}prop":
        return Propfind("prop", tuple(child.tag for child in ask))
    return ALLPROP if ask.tag == f"{D}allprop" else Propfind("propname")


def http_date(ts: float) -> str:
    """RFC 1123 (``getlastmodified``, ``Last-Modified``): what WebDAV clients parse."""
    return email.utils.formatdate(ts, usegmt=True)


def rfc3339(ts: float) -> str:
    """RFC 3339 (``creationdate``)."""
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# A property: how to fill its element with the value.
Filler = Callable[[ET.Element], None]


def _text(value: str) -> Filler:
    def fill(element: ET.Element) -> None:
        element.text = value

    return fill


def _child(tag: str) -> Filler:
    def fill(element: ET.Element) -> None:
        ET.SubElement(element, tag)

    return fill


def _nothing(element: ET.Element) -> None:
    return None


def collection_properties(changed_at: float) -> dict[str, Filler]:
    return {
        f"{D}resourcetype": _child(f"{D}collection"),
        f"{D}displayname": _text("bundles"),
        f"{D}getlastmodified": _text(http_date(changed_at)),
    }


def bundle_properties(info: BundleInfo) -> dict[str, Filler]:
    return {
        f"{D}resourcetype": _nothing,
        f"{D}getcontentlength": _text(str(info.size)),
        f"{D}getcontenttype": _text(BUNDLE_CONTENT_TYPE),
        f"{D}getetag": _text(f'"{info.sha1}"'),
        f"{D}creationdate": _text(rfc3339(info.created_at)),
        f"{D}getlastmodified": _text(http_date(info.created_at)),
        f"{D}displayname": _text(f"{info.name}-{info.version}"),
        f"{B}name": _text(info.name),
        f"{B}version": _text(info.version),
        f"{B}signer": _text(info.key_id),
    }


def multistatus(
    ask: Propfind, resources: Sequence[tuple[str, Mapping[str, Filler]]]
) -> web.Response:
    """The 207 answer to ``ask`` about each ``(href, properties)``."""
    root = ET.Element(f"{D}multistatus")
    for href, properties in resources:
        node = ET.SubElement(root, f"{D}response")
        ET.SubElement(node, f"{D}href").text = href
        if ask.kind == "prop":
            found = [name for name in ask.names if name in properties]
            missing = [name for name in ask.names if name not in properties]
        else:
            found, missing = list(properties), []
        if found or not missing:
            prop = _propstat(node, "HTTP/1.1 200 OK")
            for name in found:
                element = ET.SubElement(prop, name)
                if ask.kind != "propname":
                    properties[name](element)
        if missing:
            prop = _propstat(node, "HTTP/1.1 404 Not Found")
            for name in missing:
                ET.SubElement(prop, name)
    body = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return web.Response(status=207, body=body, content_type=XML_CONTENT_TYPE, charset="utf-8")


def _propstat(node: ET.Element, status: str) -> ET.Element:
    propstat = ET.SubElement(node, f"{D}propstat")
    prop = ET.SubElement(propstat, f"{D}prop")
    ET.SubElement(propstat, f"{D}status").text = status
    return prop


def takes_xml(request: web.Request) -> bool:
    """Whether the client would rather have XML than problem+json (WebDAV clients send no
    Accept, or ``*/*``: XML; a client naming JSON types above XML gets JSON)."""
    accept = request.headers.get("Accept", "")
    if not accept.strip():
        return True
    xml_q = json_q = 0.0
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        media = media.lower()
        if media in ("application/xml", "text/xml", "application/problem+xml"):
            xml_q = max(xml_q, q)
        elif media in ("application/problem+json", "application/json"):
            json_q = max(json_q, q)
        elif media in ("*/*", "application/*"):
            xml_q, json_q = max(xml_q, q), max(json_q, q)
    return xml_q > 0 and xml_q >= json_q


def dav_error(error: DisruptorError, precondition: str, instance: str) -> web.Response:
    """``error`` as a ``DAV:error`` naming ``precondition``, problem details inside."""
    root = ET.Element(f"{D}error")
    ET.SubElement(root, f"{D}{precondition}")
    problem = ET.SubElement(root, f"{{{PROBLEM_XML_NS}}}problem")
    for key, value in error.to_problem(instance).items():
        if isinstance(value, str | int | float) and key.isidentifier():
            ET.SubElement(problem, f"{{{PROBLEM_XML_NS}}}{key}").text = str(value)
    body = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return web.Response(
        status=error.status, body=body, content_type=XML_CONTENT_TYPE, charset="utf-8"
    )
