"""The SDK's attachment calls against a scripted node (httpx.MockTransport)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import anyio
import httpx
import pytest

from dchat_sdk import ApiError, RemoteClient
from dchat_sdk._async import AsyncRemoteClient

if TYPE_CHECKING:
    from pathlib import Path

BASE, TOKEN = "http://127.0.0.1:8470", "t"
ANSWER = {"message_id": "dcmsg1abc", "kind": "document", "state": "stored"}


def test_send_file_streams_the_file_with_its_claims(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []
    body = bytearray()

    def node(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body.extend(request.read())
        return httpx.Response(202, json=ANSWER)

    path = tmp_path / "report.pdf"
    path.write_bytes(b"%PDF-1.4 " + bytes(600_000))
    with RemoteClient(BASE, TOKEN, transport=httpx.MockTransport(node)) as client:
        reply = client.send_file("bob", path, caption="read this", waveform=b"\x01\x02")
    assert reply == ANSWER
    (request,) = seen
    assert (request.method, request.url.path) == ("POST", "/v1/attachments")
    params = dict(request.url.params)
    assert params["to"] == "bob"
    assert params["kind"] == "document"
    assert params["type"] == "application/pdf"  # guessed from the name
    assert params["name"] == "report.pdf"
    assert params["caption"] == "read this"
    assert params["waveform"] == "0102"
    assert bytes(body) == path.read_bytes()


def test_save_attachment_writes_the_bytes_and_a_refusal_is_an_api_error(tmp_path: Path) -> None:
    def node(request: httpx.Request) -> httpx.Response:
        if "bad" in request.url.path:
            error = {"error": {"code": "attachment_refused", "message": "refused: lie"}}
            return httpx.Response(422, json=error)
        return httpx.Response(200, content=b"the bytes" * 1000)

    with RemoteClient(BASE, TOKEN, transport=httpx.MockTransport(node)) as client:
        assert client.save_attachment("dcmsg1good", tmp_path / "out") == 9000
        with pytest.raises(ApiError) as refused:
            client.save_attachment("dcmsg1bad", tmp_path / "lie")
    assert (tmp_path / "out").read_bytes() == b"the bytes" * 1000
    assert refused.value.code == "attachment_refused"
    assert not (tmp_path / "lie").exists()


def test_send_location_and_describe() -> None:
    seen: list[httpx.Request] = []

    def node(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202, json=ANSWER)

    with RemoteClient(BASE, TOKEN, transport=httpx.MockTransport(node)) as client:
        client.send_location("bob", 1.5, -2.25, "here")
        client.attachment("dcmsg1abc")
    assert json.loads(seen[0].content) == {"to": "bob", "lat": 1.5, "lon": -2.25, "label": "here"}
    assert seen[1].url.path == "/v1/attachments/dcmsg1abc"


def test_the_async_client_streams_an_attachment() -> None:
    def node(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/content"):
            return httpx.Response(200, content=b"x" * 70_000)
        return httpx.Response(200, json=ANSWER)

    async def main() -> tuple[dict[str, object], bytes]:
        transport = httpx.MockTransport(node)
        async with AsyncRemoteClient(BASE, TOKEN, transport=transport) as client:
            info = await client.attachment("dcmsg1abc")
            data = b"".join([chunk async for chunk in client.attachment_bytes("dcmsg1abc")])
        return info, data

    info, data = anyio.run(main)
    assert info == ANSWER
    assert data == b"x" * 70_000
