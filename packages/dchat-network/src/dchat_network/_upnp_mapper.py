"""Keeping a relay's port mapped on the router, in trio (UPnP IGD, :mod:`._upnp`).

Theory of operation
-------------------
:class:`PortMapper` finds the internet gateway (an SSDP search on the local
network, or the description URL it was given), reads its WAN connection
service, asks for the external address and maps the external TCP port
equal to the relay's port to this host (the address the connection to the
gateway left from) for ``lease`` seconds. It renews the mapping at half the
lease, and deletes it when cancelled (the node shutting down: the delete
runs shielded, under a short deadline). A failure at any step is logged and
kept in :meth:`PortMapper.status` (``failed`` with the error), and the whole
sequence is tried again after ``retry`` seconds; a router that does not
renew is therefore mapped afresh. Every network wait has a deadline.

User nodes never map anything: they only connect out, to relays.
"""

from __future__ import annotations

import logging
import socket
from typing import Final
from urllib.parse import urlsplit

import trio

from ._errors import UpnpError
from ._upnp import (
    MAX_REPLY,
    SSDP_ADDRESS,
    IgdService,
    http_request,
    parse_description,
    parse_http_response,
    parse_soap_reply,
    parse_ssdp_reply,
    soap_call,
    ssdp_search,
)

__all__ = ("PortMapper",)

_log = logging.getLogger("dchat.upnp")
_TIMEOUT: Final = 5.0
_DESCRIPTION: Final = "dchat relay"


class PortMapper:
    """Maps ``port`` (TCP) on the gateway to this host, renews it, removes it on exit.

    Args:
        port: The relay's link port (mapped to the same external port).
        igd: The gateway's description URL; None: find it by SSDP.
        lease: Seconds each mapping is asked for (renewed at half of it).
        retry: Seconds between attempts after a failure.
    """

    def __init__(
        self, port: int, *, igd: str | None = None, lease: int = 3600, retry: float = 60.0
    ) -> None:
        self.port = port
        self._igd = igd
        self.lease = lease
        self._retry = retry
        self.state = "starting"
        """``starting``, ``mapped``, ``failed`` or ``removed``."""
        self.external: str | None = None
        """The mapped ``IP:PORT`` as the gateway reports it."""
        self.error: str | None = None
        self.renewals = 0
        """Mappings made (the first and each renewal)."""

    def status(self) -> dict[str, object]:
        """The mapping for the relay's status page."""
        return {
            "state": self.state,
            "external": self.external,
            "port": self.port,
            "lease": self.lease,
            "renewals": self.renewals,
            "error": self.error,
        }

    async def run(self) -> None:
        """Map, renew and, when cancelled, remove the mapping."""
        service: IgdService | None = None
        try:
            while True:
                try:
                    service, internal = await self._service()
                    await self._map(service, internal)
                    await trio.sleep(max(1.0, self.lease / 2))
                except (UpnpError, OSError, trio.TooSlowError) as exc:
                    self.state, self.error = "failed", f"{type(exc).__name__}: {exc}"
                    _log.warning("UPnP port mapping failed: %s", self.error)
                    await trio.sleep(self._retry)
        finally:
            if service is not None and self.state == "mapped":
                with trio.CancelScope(shield=True), trio.move_on_after(_TIMEOUT):
                    await self._unmap(service)

    async def _service(self) -> tuple[IgdService, str]:
        location = self._igd or await _discover()
        reply, internal = await _http(location, http_request("GET", location))
        status, _, body = parse_http_response(reply)
        if status != 200:
            raise UpnpError(f"description: HTTP {status}")
        return parse_description(body, location), internal

    async def _map(self, service: IgdService, internal: str) -> None:
        external_ip = (await _soap(service, "GetExternalIPAddress", {}))["NewExternalIPAddress"]
        mapping: dict[str, str | int] = {
            "NewRemoteHost": "",
            "NewExternalPort": self.port,
            "NewProtocol": "TCP",
            "NewInternalPort": self.port,
            "NewInternalClient": internal,
            "NewEnabled": 1,
            "NewPortMappingDescription": _DESCRIPTION,
            "NewLeaseDuration": self.lease,
        }
        await _soap(service, "AddPortMapping", mapping)
        first = self.state != "mapped"
        self.state, self.error, self.external = "mapped", None, f"{external_ip}:{self.port}"
        self.renewals += 1
        if first:
            _log.info("UPnP: relay reachable at %s (lease %d s)", self.external, self.lease)

    async def _unmap(self, service: IgdService) -> None:
        try:
            args: dict[str, str | int] = {
                "NewRemoteHost": "",
                "NewExternalPort": self.port,
                "NewProtocol": "TCP",
            }
            await _soap(service, "DeletePortMapping", args)
        except (UpnpError, OSError) as exc:
            _log.warning("UPnP: the mapping was not removed: %s", exc)
            return
        self.state = "removed"
        _log.info("UPnP: mapping of port %d removed", self.port)


async def _soap(service: IgdService, action: str, args: dict[str, str | int]) -> dict[str, str]:
    reply, _ = await _http(service.control_url, soap_call(service, action, args))
    status, _, body = parse_http_response(reply)
    return parse_soap_reply(status, body, action)


async def _http(url: str, request: bytes) -> tuple[bytes, str]:
    """Send ``request`` to ``url``'s host; the whole reply and our local address on that link."""
    split = urlsplit(url)
    with trio.fail_after(_TIMEOUT):
        stream = await trio.open_tcp_stream(split.hostname or "", split.port or 80)
        async with stream:
            local = stream.socket.getsockname()[0]
            await stream.send_all(request)
            chunks, size = [], 0
            while chunk := await stream.receive_some(65536):
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_REPLY:
                    raise UpnpError("reply too large")
    return b"".join(chunks), str(local)


async def _discover(wait: int = 2) -> str:
    """The description URL of the first internet gateway that answers an SSDP search."""
    with trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        await sock.bind(("0.0.0.0", 0))
        await sock.sendto(ssdp_search(wait), SSDP_ADDRESS)
        with trio.move_on_after(wait + 1):
            while True:
                data, _ = await sock.recvfrom(65536)
                location = parse_ssdp_reply(data)
                if location is not None:
                    return location
    raise UpnpError("no internet gateway answered the SSDP search")
