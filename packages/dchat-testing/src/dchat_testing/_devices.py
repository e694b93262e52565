"""Linking a second device to a user node's identity through the API, for process tests.

:func:`link_device` walks the pairing (link code, join, both short
authentication strings shown, both confirmed) between two running user nodes'
clients; :func:`peer_devices` counts the devices a node knows of a peer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ("ApiClient", "link_device", "peer_devices")


class ApiClient(Protocol):
    """What these helpers need of ``dchat_sdk.RemoteClient``."""

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any: ...

    def peer_document(self, identity_id: str) -> dict[str, Any]: ...


def _pairing(client: ApiClient) -> str:
    return str(client.request("GET", "/v1/devices/pairing")["state"])


def link_device(
    primary: ApiClient, new: ApiClient, wait_until: Callable[..., None], name: str = "laptop"
) -> None:
    """Link the node of ``new`` (no identity yet) as device ``name`` of ``primary``'s identity."""
    session = primary.request("POST", "/v1/devices/link", {"ttl": 60})
    new.request("POST", "/v1/devices/join", {"code": session["code"], "name": name})
    wait_until(lambda: _pairing(primary) == "sas" and _pairing(new) == "sas")
    new.request("POST", "/v1/devices/pairing/confirm")
    primary.request("POST", "/v1/devices/pairing/confirm")
    wait_until(lambda: _pairing(new) == "done")


def peer_devices(client: ApiClient, identity: str) -> int:
    """How many devices ``client``'s node knows for ``identity`` (0: no document yet)."""
    try:
        document = client.peer_document(identity)
    except Exception:
        return 0
    return len(document.get("devices", ()))
