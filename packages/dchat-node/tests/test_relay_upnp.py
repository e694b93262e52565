"""Real processes: a relay with ``upnp = true`` maps its link port, reports it, removes it.

The internet gateway is a small UPnP IGD responder in this test (HTTP + SOAP
on 127.0.0.1, in a thread); the relay is given its description URL
(``upnp_igd``) instead of searching by SSDP multicast, which this machine
cannot isolate in a network namespace (the search itself is unit-tested as
bytes in dchat-network's test_upnp.py).
"""

from __future__ import annotations

import re
import secrets
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dchat_node import NodeProcess, free_port
from dchat_testing import wait_until

pytestmark = pytest.mark.slow

SERVICE = "urn:schemas-upnp-org:service:WANIPConnection:1"
DESCRIPTION = (
    "<?xml version='1.0'?><root xmlns='urn:schemas-upnp-org:device-1-0'><device><serviceList>"
    f"<service><serviceType>{SERVICE}</serviceType><controlURL>/ctl</controlURL></service>"
    "</serviceList></device></root>"
)


class _Gateway(socketserver.StreamRequestHandler):
    calls: list[tuple[str, dict[str, str]]]

    def handle(self) -> None:
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            line = self.rfile.readline(65536)
            if not line:
                return
            head += line
        length = re.search(rb"Content-Length: (\d+)", head)
        body = self.rfile.read(int(length.group(1))) if length else b""
        action = re.search(rb'SOAPAction: "[^#]*#(\w+)"', head)
        if action is None:
            reply = DESCRIPTION
        else:
            name = action.group(1).decode()
            args = {k.decode(): v.decode() for k, v in re.findall(rb"<(New\w+)>([^<]*)</", body)}
            self.calls.append((name, args))
            out = "<NewExternalIPAddress>198.51.100.4</NewExternalIPAddress>"
            out = out if name == "GetExternalIPAddress" else ""
            reply = (
                "<s:Envelope xmlns:s='http://schemas.xmlsoap.org/soap/envelope/'><s:Body>"
                f"<u:{name}Response xmlns:u='{SERVICE}'>{out}</u:{name}Response></s:Body>"
                "</s:Envelope>"
            )
        data = reply.encode()
        head_out = f"HTTP/1.1 200 OK\r\nContent-Length: {len(data)}\r\nConnection: close\r\n\r\n"
        self.wfile.write(head_out.encode() + data)


@pytest.fixture
def gateway() -> Iterator[tuple[str, list[tuple[str, dict[str, str]]]]]:
    calls: list[tuple[str, dict[str, str]]] = []
    handler = type("Gateway", (_Gateway,), {"calls": calls})
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{server.server_address[1]}/desc.xml", calls
        server.shutdown()
        thread.join(timeout=10)


def test_a_relay_maps_its_port_reports_the_external_address_and_unmaps_on_stop(
    tmp_path: Path, gateway: tuple[str, list[tuple[str, dict[str, str]]]]
) -> None:
    url, calls = gateway
    data_dir = tmp_path / "relay"
    data_dir.mkdir(mode=0o700)
    (data_dir / "dchat.toml").write_text(f"[node]\nupnp = true\nupnp_igd = {url!r}\n")
    port = free_port()
    relay = NodeProcess(
        data_dir, "relay", passphrase=secrets.token_urlsafe(12), listen=f"127.0.0.1:{port}"
    )
    relay.start()
    try:
        headers = {"Authorization": f"Bearer {relay.info['token']}"}

        def upnp() -> dict[str, object]:
            status = httpx.get(relay.info["url"] + "/status", headers=headers, timeout=10).json()
            found: dict[str, object] = status.get("relay", status).get("upnp") or {}
            return found

        wait_until(lambda: upnp().get("state") == "mapped", timeout=30, what="port mapped")
        assert upnp()["external"] == f"198.51.100.4:{port}"
        added = [args for name, args in calls if name == "AddPortMapping"]
        assert added[0]["NewExternalPort"] == added[0]["NewInternalPort"] == str(port)
        assert added[0]["NewInternalClient"] == "127.0.0.1"
    finally:
        relay.stop()
    assert calls[-1][0] == "DeletePortMapping"
    assert calls[-1][1]["NewExternalPort"] == str(port)
