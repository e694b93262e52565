"""Serving the API with Hypercorn: where it may listen, and TLS when it leaves loopback.

The API is a local control surface: whoever holds the token reads the
user's messages. So it listens on loopback unless the operator says
otherwise twice: ``expose_api = true`` (or ``dchat-node run --expose-api``)
*and* a certificate and key (``api_tls_cert``, ``api_tls_key``; relative paths
are taken from the data directory). An exposed API is served over TLS only,
never in clear over a network; TLS may also be used on loopback.
:func:`check_api_exposure` decides this from the config before the node opens
anything, so a mistake is one line naming the option, not a traceback.
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
from typing import TYPE_CHECKING, Any, Final

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve

from .._errors import ConfigError
from ..config import parse_hostport
from ._app import create_app

if TYPE_CHECKING:
    from pathlib import Path

    from .._runtime import Node
    from ..config import NodeConfig

__all__ = ("api_address", "check_api_exposure", "serve_api")


def api_address(config: NodeConfig) -> str:
    """The address the API listens on: ``listen`` for a user node, else ``api_listen``."""
    return config.listen if config.role == "user" else config.api_listen


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # any other name may resolve off the machine


def _tls_files(config: NodeConfig) -> tuple[Path, Path] | None:
    cert, key = config.api_tls_cert, config.api_tls_key
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ConfigError("set both api_tls_cert and api_tls_key, or neither")
    return config.data_dir / cert, config.data_dir / key


def check_api_exposure(config: NodeConfig) -> None:
    """Refuse an API address off loopback unless exposed on purpose and over TLS.

    Raises:
        ConfigError: off loopback without ``expose_api``, exposed without TLS
            files, or TLS files that do not load (the message says which).
    """
    address = api_address(config)
    host, _ = parse_hostport(address)
    tls = _tls_files(config)
    if not is_loopback(host) and not config.expose_api:
        raise ConfigError(
            f"the API address {address} is not loopback; the API holds the node's keys, so "
            "listen on 127.0.0.1, or pass --expose-api (expose_api = true) with TLS files"
        )
    if config.expose_api and tls is None:
        raise ConfigError("expose_api needs TLS: set api_tls_cert and api_tls_key in the config")
    if tls is not None:
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(*tls)
        except (OSError, ssl.SSLError) as exc:
            problem = f"cannot load the API's TLS files {tls[0]}, {tls[1]}: {exc}"
            raise ConfigError(problem) from None


KEEP_ALIVE_S: Final = 30.0
"""Seconds the API keeps an idle HTTP/1.1 connection open (hypercorn's default is 5)."""


async def serve_api(node: Node, address: str, token: str, *, task_status: Any) -> None:
    """Serve the node's API on ``address`` (TLS when configured); starts with its URLs."""
    config = HypercornConfig()
    config.bind = [address]
    config.accesslog = None
    config.errorlog = logging.getLogger("dchat.api")
    config.graceful_timeout = 2.0
    # Idle keep-alive connections stay open longer than clients keep them (httpx, and so
    # the SDK and the CLI: 5 s). At equal times a client could send on a connection the
    # server was closing, and get "disconnected without a response" (seen in CI).
    config.keep_alive_timeout = KEEP_ALIVE_S
    config.websocket_max_message_size = node.config.api_max_body
    tls = _tls_files(node.config)
    if tls is not None:
        config.certfile, config.keyfile = (str(path) for path in tls)
    app: Any = create_app(node, token)  # hypercorn types ASGI apps more narrowly than Starlette
    async with trio.open_nursery() as tasks:
        tasks.start_soon(app.state.payments.run)  # resumes and verifies payments (user role)
        tasks.start_soon(app.state.anchors.run)  # anchored groups' chain work (user role)
        tasks.start_soon(app.state.recovery_chain.run)  # guardian recovery on the chat chain
        tasks.start_soon(app.state.webhooks.run)  # posts the bot's updates (user role)
        tasks.start_soon(app.state.stealth.run)  # background stealth scans (user role)
        tasks.start_soon(app.state.tokens.run)  # spends paid tokens on deposits (user role)
        tasks.start_soon(app.state.token_sales.run)  # sells paid tokens (relay role)
        await hypercorn_serve(app, config, task_status=task_status)
        tasks.cancel_scope.cancel()
