"""The async ``Client`` reaches every node API route that ``RemoteClient`` reaches.

Every public method of both clients is called against a scripted node that
records the request and refuses it; each method's route (HTTP method and
path, with the arguments' places as ``{}``) is then compared. A route added
to ``RemoteClient`` without a ``Client`` method fails here, naming it.
"""

from __future__ import annotations

import inspect
import json
from typing import TYPE_CHECKING, Any

import anyio
import httpx

from dchat_sdk import AsyncRemoteClient, Client, DchatSdkError, RemoteClient

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

BASE, TOKEN = "http://127.0.0.1:8470", "token"
ARG = "ARG"
"""Every text argument: its place in a path reads ``{}`` after :func:`_route`."""
SYNC_ONLY = {"close", "from_data_dir", "socket"}
"""Not requests: RemoteClient's own plumbing (Client has ``aclose``, ``connect``) and
the WebSocket (both clients' ``socket()`` open ``/v1/socket``; test_socket.py)."""


def _refuse(seen: list[httpx.Request]) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = json.dumps({"error": {"code": "refused", "message": "scripted"}})
        return httpx.Response(409, content=body.encode())

    return answer


def _arguments(method: Callable[..., Any], file: Path) -> tuple[list[Any], dict[str, Any]]:
    """Values for ``method``'s required parameters, chosen by their annotations."""
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for param in inspect.signature(method).parameters.values():
        if param.default is not param.empty or param.kind in (
            param.VAR_POSITIONAL,
            param.VAR_KEYWORD,
        ):
            continue
        hint = str(param.annotation)
        value: Any = ARG
        for name, chosen in (("Path", file), ("bool", True), ("int", 1), ("float", 1.0)):
            if name in hint:
                value = chosen
                break
        if "list" in hint or "Mapping" in hint:
            value = [] if "list" in hint else {}
        if param.kind is param.KEYWORD_ONLY:
            kwargs[param.name] = value
        else:
            args.append(value)
    return args, kwargs


def _route(request: httpx.Request) -> str:
    return f"{request.method} {request.url.path.replace(ARG, '{}')}"


def _remote_routes(file: Path) -> dict[str, set[str]]:
    seen: list[httpx.Request] = []
    client = RemoteClient(BASE, TOKEN, transport=httpx.MockTransport(_refuse(seen)))
    routes: dict[str, set[str]] = {}
    for name in sorted(n for n in dir(RemoteClient) if not n.startswith("_")):
        if name in SYNC_ONLY:
            continue
        method = getattr(client, name)
        args, kwargs = _arguments(method, file)
        del seen[:]
        try:
            result = method(*args, **kwargs)
            if inspect.isgenerator(result):
                next(result)
        except DchatSdkError:
            pass
        routes[name] = {_route(r) for r in seen}
    return routes


def _client_routes(file: Path) -> dict[str, set[str]]:
    seen: list[httpx.Request] = []
    routes: dict[str, set[str]] = {}

    async def program() -> None:
        client = Client.connect(BASE, TOKEN)
        client._sync = RemoteClient(BASE, TOKEN, transport=httpx.MockTransport(_refuse(seen)))
        client._async = AsyncRemoteClient(BASE, TOKEN, transport=httpx.MockTransport(_refuse(seen)))
        for name in sorted(n for n in dir(Client) if not n.startswith("_")):
            method = getattr(client, name)
            if name in SYNC_ONLY or not callable(method) or name in {"aclose", "open"}:
                continue
            if name in {"connect", "embedded"}:
                continue  # constructors
            args, kwargs = _arguments(method, file)
            del seen[:]
            try:
                result = method(*args, **kwargs)
                if inspect.isasyncgen(result):
                    await anext(result)
                else:
                    await result
            except DchatSdkError:
                pass
            routes[name] = {_route(r) for r in seen}

    anyio.run(program)
    return routes


def test_client_reaches_every_route_remote_client_reaches(tmp_path: Path) -> None:
    file = tmp_path / "upload.txt"
    file.write_text("x")
    remote, client = _remote_routes(file), _client_routes(file)
    reached = set().union(*client.values())
    missing = {
        f"{route} (RemoteClient.{name})"
        for name, routes in remote.items()
        for route in routes - reached
    }
    assert not missing, f"Client lacks these routes: {sorted(missing)}"
    assert len(set().union(*remote.values())) > 80  # the scripted node saw the whole surface


def test_client_methods_take_remote_client_arguments() -> None:
    """Same name, same parameters: a Client call is the RemoteClient call, awaited."""
    for name in sorted(n for n in dir(RemoteClient) if not n.startswith("_")):
        if name in SYNC_ONLY or name == "events":
            continue
        ours = inspect.signature(getattr(Client, name)).parameters
        theirs = inspect.signature(getattr(RemoteClient, name)).parameters
        assert list(ours)[1:] == list(theirs)[1:], name
