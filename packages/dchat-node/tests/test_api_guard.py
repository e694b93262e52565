"""The API's front door in process: token before body, body caps, OpenAPI per role, exposure.

The same points are checked against real node processes in ``test_hardening.py``;
these run in milliseconds and pin the edge cases.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dchat_core import SystemClock
from dchat_node import ConfigError
from dchat_node._runtime import build_node
from dchat_node.api._app import create_app
from dchat_node.api._guard import LimitBody, RequireToken
from dchat_node.api._serve import check_api_exposure
from dchat_node.config import NodeConfig
from dchat_storage import AsyncStore, open_database
from dchat_testing import write_self_signed_tls

TOKEN = "s3cret-token"


class _App:
    """An ASGI app that reads the whole body, then answers 200 with its length."""

    def __init__(self) -> None:
        self.reads = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        size = 0
        while True:
            message = await receive()
            self.reads += 1
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = str(size).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})


def _scope(path: str = "/v1/x", headers: dict[str, str] | None = None) -> dict[str, Any]:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return {"type": "http", "method": "POST", "path": path, "headers": raw}


async def _call(app: Any, scope: dict[str, Any], chunks: list[bytes]) -> tuple[int, dict[str, Any]]:
    """Run ``app`` on ``scope``; returns the status and the JSON (or int) body answered."""
    pending = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert len(starts) == 1, sent  # one answer, never two
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return starts[0]["status"], json.loads(body)


def _guarded(inner: Any, max_body: int = 1024) -> Any:
    return RequireToken(LimitBody(inner, max_body=max_body), TOKEN, ("/health",))


@pytest.mark.parametrize(
    "authorization", [None, "", "Bearer", f"Bearer {TOKEN}x", f"bearer {TOKEN}", TOKEN]
)
async def test_a_request_without_the_token_is_refused_before_its_body_is_read(
    authorization: str | None,
) -> None:
    inner = _App()
    headers = {"content-length": str(64 * 1024 * 1024)}
    if authorization is not None:
        headers["authorization"] = authorization
    status, body = await _call(_guarded(inner), _scope(headers=headers), [b"{not json"])
    assert (status, body["error"]["code"]) == (401, "unauthorized")
    assert inner.reads == 0


async def test_health_is_open_and_the_token_opens_the_rest() -> None:
    inner = _App()
    assert (await _call(_guarded(inner), _scope("/health"), [b"ab"]))[0] == 200
    auth = {"authorization": f"Bearer {TOKEN}"}
    assert await _call(_guarded(inner), _scope("/v1/x", auth), [b"abc"]) == (200, 3)


async def test_a_declared_length_over_the_cap_is_413_before_reading() -> None:
    inner = _App()
    headers = {"authorization": f"Bearer {TOKEN}", "content-length": "1025"}
    status, body = await _call(_guarded(inner), _scope(headers=headers), [b"x" * 1025])
    assert (status, body["error"]["code"]) == (413, "body_too_large")
    assert inner.reads == 0


async def test_a_chunked_body_over_the_cap_is_413_and_the_app_answer_is_dropped() -> None:
    inner = _App()
    auth = {"authorization": f"Bearer {TOKEN}"}
    status, body = await _call(_guarded(inner), _scope(headers=auth), [b"x" * 600] * 3)
    assert (status, body["error"]["code"]) == (413, "body_too_large")
    assert inner.reads == 1  # the chunk that crossed the cap never reached the app
    assert await _call(_guarded(inner), _scope(headers=auth), [b"x" * 512] * 2) == (200, 1024)


async def test_paths_under_a_large_prefix_get_the_large_cap() -> None:
    """The Bot API (``/bot``) takes uploads past the API's cap: it limits them itself."""
    inner = _App()
    app = LimitBody(inner, max_body=1024, large_body=4096, large_prefix=("/bot",))
    assert await _call(app, _scope("/bot1:abc/sendPhoto"), [b"x" * 2000] * 2) == (200, 4000)
    status, _ = await _call(app, _scope("/bot1:abc/sendPhoto"), [b"x" * 2000] * 3)
    assert status == 413
    status, _ = await _call(app, _scope("/v1/x"), [b"x" * 2000])
    assert status == 413


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    return write_self_signed_tls(tmp_path)


@pytest.mark.parametrize(
    ("role", "field"),
    [("user", "listen"), ("relay", "api_listen"), ("validator", "api_listen")],
)
@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.7", "[::]", "example.org"])
def test_the_api_off_loopback_is_refused_without_the_flag(
    tmp_path: Path, role: str, field: str, host: str
) -> None:
    config = NodeConfig.model_validate({"role": role, "data_dir": tmp_path, field: f"{host}:8470"})
    with pytest.raises(ConfigError, match=r"not loopback.*--expose-api"):
        check_api_exposure(config)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.0.1", "localhost", "[::1]"])
def test_loopback_needs_no_flag(tmp_path: Path, host: str) -> None:
    check_api_exposure(NodeConfig(data_dir=tmp_path, listen=f"{host}:0"))


def test_the_relay_link_may_listen_anywhere(tmp_path: Path) -> None:
    check_api_exposure(NodeConfig(role="relay", data_dir=tmp_path, listen="0.0.0.0:7400"))


def test_exposing_needs_loadable_tls_files(tmp_path: Path, tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    exposed = {"data_dir": tmp_path, "listen": "0.0.0.0:8470", "expose_api": True}
    with pytest.raises(ConfigError, match="needs TLS"):
        check_api_exposure(NodeConfig.model_validate(exposed))
    with pytest.raises(ConfigError, match="both api_tls_cert and api_tls_key"):
        check_api_exposure(NodeConfig.model_validate({**exposed, "api_tls_cert": cert}))
    with pytest.raises(ConfigError, match="cannot load the API's TLS files"):
        check_api_exposure(
            NodeConfig.model_validate({**exposed, "api_tls_cert": key, "api_tls_key": cert})
        )
    # Relative names are the data directory's files.
    check_api_exposure(
        NodeConfig.model_validate({**exposed, "api_tls_cert": cert.name, "api_tls_key": key.name})
    )


@pytest.fixture
def schemas(tmp_path: Path) -> dict[str, dict[str, Any]]:
    """Each role's OpenAPI document, from an app built over a real (unstarted) node."""
    found: dict[str, dict[str, Any]] = {}
    for role in ("user", "relay", "validator"):
        with open_database(tmp_path / f"{role}.db") as db:
            config = NodeConfig.model_validate({"role": role, "data_dir": tmp_path})
            node = build_node(config, AsyncStore(db), SystemClock(), b"unused")
            found[role] = create_app(node, TOKEN).openapi()
    return found


def test_openapi_declares_a_bearer_scheme_on_every_route_but_health(
    schemas: dict[str, dict[str, Any]],
) -> None:
    for schema in schemas.values():
        assert schema["components"]["securitySchemes"]["token"] == {
            "type": "http",
            "scheme": "bearer",
            "description": "The bearer token from the node's api.json (a new one at every start).",
        }
        for path, operations in schema["paths"].items():
            for operation in operations.values():
                names = [p["name"].lower() for p in operation.get("parameters", [])]
                assert "authorization" not in names, path
                assert operation.get("security") == (None if path == "/health" else [{"token": []}])


def test_openapi_lists_only_the_routes_of_the_role(schemas: dict[str, dict[str, Any]]) -> None:
    relay = ["/health", "/metrics", "/status", "/v1/relay/receipts/batch"]
    relay += ["/v1/relay/receipts/claimed", "/v1/relay/status"]
    assert sorted(schemas["relay"]["paths"]) == relay
    validator = set(schemas["validator"]["paths"]) - {"/health", "/metrics", "/status"}
    assert validator
    assert all(p.startswith("/v1/chain/") for p in validator)
    user = set(schemas["user"]["paths"])
    assert {"/v1/identity", "/v1/messages", "/v1/events"} <= user
    assert not any(p.startswith(("/v1/chain/", "/v1/relay/")) for p in user)


def _refs(value: Any) -> list[str]:
    if isinstance(value, dict):
        own = [value["$ref"]] if isinstance(value.get("$ref"), str) else []
        return own + [r for v in value.values() for r in _refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in _refs(v)]
    return []


def test_every_schema_reference_resolves_in_the_document(
    schemas: dict[str, dict[str, Any]],
) -> None:
    # /v1/events once embedded a model's own "#/$defs/..." references, which
    # point nowhere in the OpenAPI document (schemathesis could not check its pages).
    for role, schema in schemas.items():
        refs = _refs(schema)
        assert refs or role == "relay"
        for ref in refs:
            assert ref.startswith("#/components/schemas/"), (role, ref)
            assert ref.rsplit("/", 1)[1] in schema["components"]["schemas"], (role, ref)


def test_the_event_stream_schema_describes_one_frame(schemas: dict[str, dict[str, Any]]) -> None:
    # Schema-checking tools validate each parsed SSE frame against this schema; it
    # once said "string", so every real frame ({"id", "event", "data"}) failed it.
    content = schemas["user"]["paths"]["/v1/events"]["get"]["responses"]["200"]["content"]
    frame = content["text/event-stream"]["schema"]
    assert frame["type"] == "object"
    assert set(frame["properties"]) == {"id", "event", "data", "retry"}
    page = content["application/json"]["schema"]
    assert page == {"$ref": "#/components/schemas/EventPage"}


def test_every_guarded_operation_declares_the_error_shape(
    schemas: dict[str, dict[str, Any]],
) -> None:
    # Schemathesis holds answers to their declared schemas: with the shape
    # declared, a 4xx in any other shape fails the run.
    for schema in schemas.values():
        error = schema["components"]["schemas"]["Error"]
        assert error["required"] == ["error"]
        assert "HTTPValidationError" not in schema["components"]["schemas"]
        for path, operations in schema["paths"].items():
            for operation in operations.values():
                responses = operation["responses"]
                if path == "/health":
                    assert "4XX" not in responses
                    continue
                for status in ("4XX", "422"):
                    if status in responses:
                        body = responses[status]["content"]["application/json"]["schema"]
                        assert body == {"$ref": "#/components/schemas/Error"}, (path, status)
                assert "4XX" in responses, path


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/v1/no-such-route", 404, "not_found"),
        ("POST", "/status", 405, "method_not_allowed"),
        ("DELETE", "/v1/identity", 405, "method_not_allowed"),
        # Found by schemathesis: a JSON body that is not UTF-8 (FastAPI: "There
        # was an error parsing the body").
        ("POST", "/v1/contacts", 400, "invalid_request"),
    ],
)
async def test_the_routers_own_answers_have_the_error_shape(
    tmp_path: Path, method: str, path: str, status: int, code: str
) -> None:
    # They were FastAPI's {"detail": "Not Found"} ("Method Not Allowed", ...).
    with open_database(tmp_path / "user.db") as db:
        config = NodeConfig.model_validate({"role": "user", "data_dir": tmp_path})
        app = create_app(build_node(config, AsyncStore(db), SystemClock(), b"unused"), TOKEN)
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        scope = {**_scope(path, headers), "method": method}
        scope |= {"query_string": b"", "root_path": "", "scheme": "http", "server": ("x", 80)}
        answer_status, body = await _call(app, scope, [b"\xff\xfe{"])
    assert answer_status == status
    assert body["error"]["code"] == code
    assert set(body) == {"error"}
