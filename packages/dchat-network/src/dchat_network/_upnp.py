"""UPnP IGD port mapping, sans-IO: the SSDP search, the device description, the SOAP calls.

Theory of operation
-------------------
A relay behind a home router is unreachable until the router forwards its
link port. Most routers implement the UPnP Internet Gateway Device
protocol: a client finds the gateway by an SSDP search (an HTTP-formatted
UDP datagram to ``239.255.255.250:1900``; the answer's ``LOCATION`` is the
URL of the device's XML description), reads from the description the
control URL of its ``WANIPConnection`` (or ``WANPPPConnection``) service,
and calls SOAP actions there: ``GetExternalIPAddress``, ``AddPortMapping``
(with a lease, renewed before it ends) and ``DeletePortMapping``.

This module builds and parses those messages and nothing else
(:class:`~dchat_network.lowlevel.PortMapper` does the I/O). Everything a
router sends is untrusted: replies are bounded (:data:`MAX_REPLY`), a
document type declaration (the door to entity expansion) is refused, and
every malformed reply raises :class:`UpnpError`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Final
from urllib.parse import urljoin, urlsplit
from xml.sax.saxutils import escape

from ._errors import UpnpError

__all__ = (
    "MAX_REPLY",
    "SSDP_ADDRESS",
    "IgdService",
    "http_request",
    "parse_description",
    "parse_http_response",
    "parse_soap_reply",
    "parse_ssdp_reply",
    "soap_call",
    "ssdp_search",
)

SSDP_ADDRESS: Final = ("239.255.255.250", 1900)
MAX_REPLY: Final = 256 * 1024
"""The most bytes read from a router for one reply."""
_IGD: Final = "urn:schemas-upnp-org:device:InternetGatewayDevice:1"
_SERVICES: Final = (
    "urn:schemas-upnp-org:service:WANIPConnection:2",
    "urn:schemas-upnp-org:service:WANIPConnection:1",
    "urn:schemas-upnp-org:service:WANPPPConnection:1",
)
_SOAP_ENV: Final = "http://schemas.xmlsoap.org/soap/envelope/"


@dataclass(frozen=True, slots=True)
class IgdService:
    """The WAN connection service of a gateway: where to send SOAP calls, and its type."""

    control_url: str
    service_type: str


def ssdp_search(wait: int = 2) -> bytes:
    """The SSDP ``M-SEARCH`` datagram for internet gateways (answers within ``wait`` s)."""
    lines = [
        "M-SEARCH * HTTP/1.1",
        f"HOST: {SSDP_ADDRESS[0]}:{SSDP_ADDRESS[1]}",
        'MAN: "ssdp:discover"',
        f"MX: {wait}",
        f"ST: {_IGD}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def parse_ssdp_reply(data: bytes) -> str | None:
    """The ``LOCATION`` of an SSDP answer from an internet gateway, else None."""
    try:
        status, headers, _ = parse_http_response(data)
    except UpnpError:
        return None
    location = headers.get("location", "")
    if status != 200 or urlsplit(location).scheme != "http":
        return None
    return location


def parse_http_response(data: bytes) -> tuple[int, dict[str, str], bytes]:
    """``(status, lower-cased headers, body)`` of one HTTP/1.x response (chunked or not)."""
    if len(data) > MAX_REPLY:
        raise UpnpError("reply too large")
    head, sep, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if not sep:
        body = b""
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdecimal():
        raise UpnpError("not an HTTP response")
    headers = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _unchunk(body)
    elif (length := headers.get("content-length", "")).isdecimal():
        body = body[: int(length)]
    return int(parts[1]), headers, body


def _unchunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        try:
            size = int(size_line.split(b";", 1)[0], 16)
        except ValueError:
            raise UpnpError("bad chunked encoding") from None
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return bytes(out)


def _xml(body: bytes) -> ET.Element:
    if len(body) > MAX_REPLY or b"<!DOCTYPE" in body.upper():
        raise UpnpError("refused an oversized XML reply or one with a document type")
    try:
        return ET.fromstring(body)  # noqa: S314 (bounded, no DTD: see above)
    except ET.ParseError:
        raise UpnpError("malformed XML") from None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_description(body: bytes, location: str) -> IgdService:
    """The WAN connection service in a gateway's description fetched from ``location``."""
    root = _xml(body)
    base = location
    found: dict[str, str] = {}
    for element in root.iter():
        name = _local(element.tag)
        if name == "URLBase" and element.text:
            base = element.text.strip()
        if name != "service":
            continue
        fields = {_local(child.tag): (child.text or "").strip() for child in element}
        kind, control = fields.get("serviceType", ""), fields.get("controlURL", "")
        if kind in _SERVICES and control:
            found.setdefault(kind, control)
    for kind in _SERVICES:
        if kind in found:
            url = urljoin(base, found[kind])
            if urlsplit(url).scheme != "http":
                raise UpnpError("the gateway's control URL is not http")
            return IgdService(url, kind)
    raise UpnpError("the device offers no WAN connection service")


def http_request(
    method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> bytes:
    """One HTTP/1.1 request to ``url`` that asks the server to close the connection after."""
    parts = urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    lines = [f"{method} {path} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def soap_call(service: IgdService, action: str, arguments: dict[str, str | int]) -> bytes:
    """The HTTP request of SOAP ``action`` with ``arguments`` to ``service``."""
    args = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in arguments.items())
    body = (
        '<?xml version="1.0"?>'
        f'<s:Envelope xmlns:s="{_SOAP_ENV}" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">'
        f'<s:Body><u:{action} xmlns:u="{service.service_type}">{args}</u:{action}></s:Body>'
        "</s:Envelope>"
    ).encode()
    headers = {
        "Content-Type": 'text/xml; charset="utf-8"',
        "SOAPAction": f'"{service.service_type}#{action}"',
    }
    return http_request("POST", service.control_url, body, headers)


def parse_soap_reply(status: int, body: bytes, action: str) -> dict[str, str]:
    """The out-arguments of a SOAP reply to ``action``; :class:`UpnpError` for a fault."""
    root = _xml(body) if body else None
    if root is None:
        raise UpnpError(f"{action}: empty reply (HTTP {status})")
    for element in root.iter():
        if _local(element.tag) == "UPnPError":
            fields = {_local(child.tag): (child.text or "").strip() for child in element}
            code = fields.get("errorCode", "")
            text = fields.get("errorDescription", "")[:200]
            raise UpnpError(
                f"{action} refused: {code} {text}", int(code) if code.isdecimal() else None
            )
        if _local(element.tag) == f"{action}Response" and status == 200:
            return {_local(child.tag): (child.text or "").strip() for child in element}
    raise UpnpError(f"{action}: no response element (HTTP {status})")
