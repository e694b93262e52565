"""A client for a dchat node's local HTTP API.

The node serves its API on loopback with a bearer token (see the node's
``api.json``). This client is what the ``dchat`` CLI, bots and apps use to drive
a running node; every failure surfaces as a :class:`DchatSdkError` subclass.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from dchat_core import CallerError, DchatError, PeerError, TransportError

__all__ = (
    "ApiError",
    "ContactInfo",
    "DchatSdkError",
    "MessageInfo",
    "NodeUnreachableError",
    "RemoteClient",
)


class DchatSdkError(DchatError):
    """Root of the errors raised by :mod:`dchat_sdk`."""


class NodeUnreachableError(DchatSdkError, TransportError):
    """The node's API could not be reached (not running, wrong address, timeout)."""


class ApiError(DchatSdkError, CallerError):
    """The node refused a request.

    Attributes:
        status: HTTP status code.
        code: Machine-readable error code from the node.
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{message} ({code}, HTTP {status})")
        self.status = status
        self.code = code


class _BadReplyError(DchatSdkError, PeerError, ValueError):
    """The node answered with something that is not the documented JSON."""


@dataclass(frozen=True, slots=True)
class ContactInfo:
    """A contact as the node lists it."""

    name: str
    identity_id: str


@dataclass(frozen=True, slots=True)
class MessageInfo:
    """A stored message as the node lists it."""

    message_id: str
    direction: str
    peer_id: str
    peer_name: str | None
    text: str
    sent_at: float
    stored_at: float


class RemoteClient:
    """Synchronous client of one node's local API.

    Args:
        base_url: For example ``http://127.0.0.1:8470``.
        token: The node's bearer token.
        timeout: Seconds allowed for each request.
        transport: Optional httpx transport (e.g. ``httpx.MockTransport`` in tests).
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            transport=transport,
        )

    @classmethod
    def from_data_dir(cls, data_dir: str | Path, *, timeout: float = 10.0) -> RemoteClient:
        """Connect to the node whose data directory is ``data_dir`` (reads ``api.json``)."""
        path = Path(data_dir) / "api.json"
        try:
            info = json.loads(path.read_text())
            return cls(str(info["url"]), str(info["token"]), timeout=timeout)
        except (OSError, ValueError, KeyError, TypeError):
            raise NodeUnreachableError(f"no running node found for {data_dir}") from None

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self._http.close()

    def __enter__(self) -> RemoteClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, str | int] | None = None,
    ) -> Any:
        try:
            response = self._http.request(method, path, json=body, params=params)
        except httpx.HTTPError as exc:
            raise NodeUnreachableError(f"node API unreachable: {type(exc).__name__}") from None
        try:
            payload = response.json()
        except ValueError:
            raise _BadReplyError("node sent a non-JSON reply") from None
        if response.status_code >= 400:
            error = payload.get("error") if isinstance(payload, dict) else None
            if not isinstance(error, dict):
                error = {}
            raise ApiError(
                response.status_code,
                str(error.get("code", "unknown")),
                str(error.get("message", "request failed")),
            )
        return payload

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, str | int] | None = None,
    ) -> dict[str, Any]:
        """Call any route of the node API and return its JSON object.

        Raises:
            ApiError: the node answered with an error (its code and message).
            NodeUnreachableError: no answer.
        """
        return _object(self._call(method, path, body, params))

    def document(self) -> dict[str, Any]:
        """This identity's current identity document (summary and signed bytes)."""
        return self.request("GET", "/v1/identity/document")

    def peer_document(self, identity_id: str) -> dict[str, Any]:
        """The newest document received from the identity ``identity_id``."""
        return self.request("GET", f"/v1/documents/{identity_id}")

    def health(self) -> dict[str, Any]:
        """The node's liveness report."""
        return _object(self._call("GET", "/health"))

    def status(self) -> dict[str, Any]:
        """Role, identity, counters."""
        return _object(self._call("GET", "/status"))

    def create_identity(self, name: str) -> str:
        """Create this node's identity; returns the identity id."""
        return _str(self._call("POST", "/v1/identity", {"name": name}), "identity_id")

    def card(self) -> str:
        """This node's contact card (text form), to hand to others."""
        return _str(self._call("GET", "/v1/identity"), "card")

    def add_contact(self, name: str, card: str) -> ContactInfo:
        """Add a contact from their card."""
        return _contact(self._call("POST", "/v1/contacts", {"name": name, "card": card}))

    def contacts(self) -> list[ContactInfo]:
        """All contacts, by name."""
        return [_contact(c) for c in _list(self._call("GET", "/v1/contacts"), "contacts")]

    def send(self, to: str, text: str) -> str:
        """Send ``text`` to ``to``; returns the message id.

        ``to`` is a contact's name or the identity id of anyone whose card the
        node holds (a contact, or the sender of a message request), so any
        received message can be answered::

            for m in client.messages():
                if m.direction == "in":
                    client.send(m.peer_id, "got it")
        """
        return _str(self._call("POST", "/v1/messages", {"to": to, "text": text}), "message_id")

    def messages(self, peer: str | None = None, limit: int = 100) -> list[MessageInfo]:
        """Stored messages, oldest first (optionally with one contact only)."""
        params: dict[str, str | int] = {"limit": limit}
        if peer:
            params["peer"] = peer  # encoded by httpx: names may hold '&', '#', '+'
        reply = self._call("GET", "/v1/messages", params=params)
        return [_message(m) for m in _list(reply, "messages")]

    def requests(self) -> list[dict[str, Any]]:
        """Open message requests (senders who are not contacts), oldest first."""
        return [_object(r) for r in _list(self._call("GET", "/v1/requests"), "requests")]

    def accept_request(self, identity_id: str, name: str) -> ContactInfo:
        """Make the sender of a request a contact named ``name``."""
        reply = self._call("POST", f"/v1/requests/{identity_id}/accept", {"name": name})
        return _contact(reply)

    def ignore_request(self, identity_id: str) -> int:
        """Drop a request and delete its messages; returns how many were deleted."""
        return _int(self._call("POST", f"/v1/requests/{identity_id}/ignore"), "deleted")

    def block(self, identity_id: str) -> int:
        """Block an identity: its messages are dropped from now on (and a request's deleted)."""
        return _int(self._call("POST", "/v1/blocked", {"identity_id": identity_id}), "deleted")

    def unblock(self, identity_id: str) -> None:
        """Let a blocked identity's messages through again."""
        self._call("DELETE", f"/v1/blocked/{identity_id}")

    def blocked(self) -> list[str]:
        """Blocked identity ids."""
        return [str(i) for i in _list(self._call("GET", "/v1/blocked"), "blocked")]

    def notices(self) -> list[dict[str, Any]]:
        """Notices for the user, e.g. ``{"kind": "session_reset", "peer": ..., "at_ms": ...}``."""
        return [_object(n) for n in _list(self._call("GET", "/v1/notices"), "notices")]


# Reply readers: a reply of the wrong shape is the node's fault, reported as
# _BadReplyError instead of leaking KeyError/TypeError to the caller.


def _object(reply: Any) -> dict[str, Any]:
    if not isinstance(reply, dict):
        raise _BadReplyError("node reply is not a JSON object")
    return reply


def _field(reply: Any, key: str) -> Any:
    obj = _object(reply)
    if key not in obj:
        raise _BadReplyError(f"node reply lacks {key!r}")
    return obj[key]


def _str(reply: Any, key: str) -> str:
    value = _field(reply, key)
    if not isinstance(value, str):
        raise _BadReplyError(f"node reply field {key!r} is not a string")
    return value


def _number(reply: Any, key: str) -> float:
    value = _field(reply, key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _BadReplyError(f"node reply field {key!r} is not a number")
    return float(value)


def _int(reply: Any, key: str) -> int:
    value = _field(reply, key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _BadReplyError(f"node reply field {key!r} is not an integer")
    return value


def _list(reply: Any, key: str) -> list[Any]:
    value = _field(reply, key)
    if not isinstance(value, list):
        raise _BadReplyError(f"node reply field {key!r} is not a list")
    return value


def _contact(reply: Any) -> ContactInfo:
    return ContactInfo(_str(reply, "name"), _str(reply, "identity_id"))


def _message(reply: Any) -> MessageInfo:
    return MessageInfo(
        message_id=_str(reply, "message_id"),
        direction=_str(reply, "direction"),
        peer_id=_str(reply, "peer_id"),
        peer_name=None if _field(reply, "peer_name") is None else _str(reply, "peer_name"),
        text=_str(reply, "text"),
        sent_at=_number(reply, "sent_at"),
        stored_at=_number(reply, "stored_at"),
    )
