"""UPnP IGD port mapping against a local gateway responder (HTTP + SOAP on 127.0.0.1).

SSDP discovery (UDP multicast) is not exercised against a live responder:
this machine offers no network namespace to run a multicast gateway in
isolation, so the mapper is given the description URL (``igd``), which is
the same path after discovery; the SSDP datagrams themselves are checked
as bytes.
"""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from dchat_network._upnp import (
    IgdService,
    parse_description,
    parse_http_response,
    parse_soap_reply,
    parse_ssdp_reply,
    soap_call,
    ssdp_search,
)
from dchat_network.lowlevel import PortMapper, UpnpError
from dchat_testing import wait_until_async

WAIT = 10.0
SERVICE = "urn:schemas-upnp-org:service:WANIPConnection:1"
DESCRIPTION = f"""<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0">
 <device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>
  <deviceList><device><deviceList><device>
   <serviceList>
    <service><serviceType>urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1</serviceType>
     <controlURL>/ctl/common</controlURL></service>
    <service><serviceType>{SERVICE}</serviceType><controlURL>/ctl/ip</controlURL></service>
   </serviceList>
  </device></deviceList></device></deviceList>
 </device>
</root>""".encode()


class Gateway:
    """A minimal IGD: the description at /desc.xml, SOAP at /ctl/ip; records the calls."""

    def __init__(self, *, refuse: str | None = None) -> None:
        self.calls: list[tuple[str, dict[str, str]]] = []
        self.mappings: dict[int, dict[str, str]] = {}
        self.refuse = refuse
        self.changed = trio.Event()

    async def serve(self, stream: trio.SocketStream) -> None:
        async with stream:
            data = b""
            with trio.move_on_after(WAIT):
                while b"\r\n\r\n" not in data or len(data) < self._length(data):
                    chunk = await stream.receive_some(65536)
                    if not chunk:
                        break
                    data += chunk
            await stream.send_all(self.answer(data))

    @staticmethod
    def _length(data: bytes) -> int:
        head, _, _ = data.partition(b"\r\n\r\n")
        found = re.search(rb"Content-Length: (\d+)", head)
        return len(head) + 4 + (int(found.group(1)) if found else 0)

    def answer(self, request: bytes) -> bytes:
        head, _, body = request.partition(b"\r\n\r\n")
        if head.startswith(b"GET /desc.xml"):
            return _http(200, DESCRIPTION)
        action = re.search(rb"SOAPAction: \"[^#]*#(\w+)\"", head)
        if not head.startswith(b"POST /ctl/ip") or action is None:
            return _http(404, b"")
        name = action.group(1).decode()
        args = {k.decode(): v.decode() for k, v in re.findall(rb"<(New\w+)>([^<]*)</", body)}
        self.calls.append((name, args))
        self.changed.set()
        self.changed = trio.Event()
        if name == self.refuse:
            fault = (
                "<s:Envelope xmlns:s='http://schemas.xmlsoap.org/soap/envelope/'><s:Body>"
                "<s:Fault><detail><UPnPError xmlns='urn:schemas-upnp-org:control-1-0'>"
                "<errorCode>718</errorCode><errorDescription>ConflictInMappingEntry"
                "</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>"
            )
            return _http(500, fault.encode())
        out = ""
        if name == "GetExternalIPAddress":
            out = "<NewExternalIPAddress>203.0.113.7</NewExternalIPAddress>"
        elif name == "AddPortMapping":
            self.mappings[int(args["NewExternalPort"])] = args
        elif name == "DeletePortMapping":
            self.mappings.pop(int(args["NewExternalPort"]), None)
        reply = (
            "<s:Envelope xmlns:s='http://schemas.xmlsoap.org/soap/envelope/'><s:Body>"
            f"<u:{name}Response xmlns:u='{SERVICE}'>{out}</u:{name}Response>"
            "</s:Body></s:Envelope>"
        )
        return _http(200, reply.encode())

    async def wait_for(self, count: int) -> None:
        while len(self.calls) < count:
            await self.changed.wait()


def _http(status: int, body: bytes) -> bytes:
    head = f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    return head.encode() + body


@asynccontextmanager
async def gateway(**options: str) -> AsyncIterator[tuple[Gateway, str]]:
    igd = Gateway(**options)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, igd.serve, 0, host="127.0.0.1")
        )
        port = listeners[0].socket.getsockname()[1]
        yield igd, f"http://127.0.0.1:{port}/desc.xml"
        nursery.cancel_scope.cancel()


async def test_a_relay_port_is_mapped_renewed_and_removed_on_shutdown() -> None:
    async with gateway() as (igd, url):
        mapper = PortMapper(4711, igd=url, lease=2)
        with trio.fail_after(WAIT):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(mapper.run)
                await igd.wait_for(2)  # GetExternalIPAddress, AddPortMapping
                await wait_until_async(lambda: mapper.state == "mapped", what="mapped")
                assert mapper.external == "203.0.113.7:4711"
                mapping = igd.mappings[4711]
                assert mapping["NewInternalClient"] == "127.0.0.1"  # the address we left from
                assert (mapping["NewInternalPort"], mapping["NewProtocol"]) == ("4711", "TCP")
                assert mapping["NewLeaseDuration"] == "2"
                await igd.wait_for(4)  # renewed at half the lease
                await wait_until_async(lambda: mapper.renewals == 2, what="renewed")
                nursery.cancel_scope.cancel()  # the node shuts down
        assert igd.calls[-1][0] == "DeletePortMapping"
        assert igd.mappings == {}
        assert mapper.status()["state"] == "removed"


async def test_a_refused_mapping_is_reported_and_retried() -> None:
    async with gateway(refuse="AddPortMapping") as (igd, url):
        mapper = PortMapper(4712, igd=url, lease=60, retry=0.1)
        with trio.fail_after(WAIT):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(mapper.run)
                await igd.wait_for(4)  # two attempts
                await wait_until_async(lambda: mapper.state == "failed", what="failed")
                nursery.cancel_scope.cancel()
        status = mapper.status()
        assert status["state"] == "failed"
        assert "718" in str(status["error"])
        assert not any(name == "DeletePortMapping" for name, _ in igd.calls)  # nothing mapped


async def test_an_absent_gateway_is_a_failure_not_a_crash() -> None:
    mapper = PortMapper(4713, igd="http://127.0.0.1:9/desc.xml", retry=30)
    with trio.move_on_after(2):
        await mapper.run()
    assert mapper.state == "failed"
    assert mapper.error is not None


def test_the_ssdp_search_and_an_answer() -> None:
    search = ssdp_search(2).decode()
    assert search.startswith("M-SEARCH * HTTP/1.1\r\n")
    assert "ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n" in search
    answer = b"HTTP/1.1 200 OK\r\nLOCATION: http://192.168.1.1:5000/rootDesc.xml\r\n\r\n"
    assert parse_ssdp_reply(answer) == "http://192.168.1.1:5000/rootDesc.xml"
    assert parse_ssdp_reply(b"NOTIFY * HTTP/1.1\r\n\r\n") is None
    assert parse_ssdp_reply(b"HTTP/1.1 200 OK\r\nLOCATION: file:///etc/passwd\r\n\r\n") is None


def test_the_description_gives_the_wan_service_control_url() -> None:
    service = parse_description(DESCRIPTION, "http://10.0.0.1:5000/desc.xml")
    assert service == IgdService("http://10.0.0.1:5000/ctl/ip", SERVICE)
    request = soap_call(service, "GetExternalIPAddress", {})
    assert request.startswith(b"POST /ctl/ip HTTP/1.1\r\nHost: 10.0.0.1:5000\r\n")
    assert f'SOAPAction: "{SERVICE}#GetExternalIPAddress"'.encode() in request


@pytest.mark.parametrize(
    "body",
    [
        b"<root/>",
        b"not xml",
        b'<!DOCTYPE x [<!ENTITY a "aaaa">]><root>&a;</root>',
        b"<root><service><serviceType>" + SERVICE.encode() + b"</serviceType>"
        b"<controlURL>file:///x</controlURL></service></root>",
    ],
)
def test_a_bad_description_is_a_typed_error(body: bytes) -> None:
    with pytest.raises(UpnpError):
        parse_description(body, "http://10.0.0.1/desc.xml")


@given(data=st.binary(max_size=600))
def test_hostile_gateway_replies_parse_or_raise_the_typed_error(data: bytes) -> None:
    try:
        status, _, body = parse_http_response(data)
        parse_soap_reply(status, body, "AddPortMapping")
    except UpnpError:
        pass
    with suppress(UpnpError):
        parse_description(data, "http://10.0.0.1/desc.xml")
    parse_ssdp_reply(data)
