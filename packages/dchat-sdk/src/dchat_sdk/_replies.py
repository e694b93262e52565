"""What the node answers, read into typed records.

A reply of the wrong shape is the node's fault, reported as
:class:`_BadReplyError` instead of leaking ``KeyError``/``TypeError``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._errors import ApiError, _BadReplyError

if TYPE_CHECKING:
    import httpx

__all__ = (
    "ContactInfo",
    "MessageInfo",
    "MessagePage",
    "answer",
    "answer_json",
    "api_error",
    "client_options",
    "contact",
    "integer",
    "items",
    "member",
    "message",
    "message_page",
    "number",
    "obj",
    "query",
    "refusal",
    "string",
)


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


@dataclass(frozen=True, slots=True)
class MessagePage:
    """One page of ``GET /v1/messages``.

    Attributes:
        messages: The messages, oldest first.
        before: Pass as ``before=`` for the page before this one (None: this
            page reached the oldest message).
        after: Pass as ``after=`` for what is newer than this page (None only
            from a node that predates cursor paging).
        missing: With a peer: how many of the conversation's texts are known
            to be missing (gaps in their senders' numbering); else None.
    """

    messages: list[MessageInfo]
    before: int | None
    after: int | None
    missing: int | None = None


def client_options(base_url: str, token: str, timeout: float, transport: Any) -> dict[str, Any]:
    """The httpx client settings of a node client (sync or async)."""
    headers = {"Authorization": f"Bearer {token}"}
    return {"base_url": base_url, "headers": headers, "timeout": timeout, "transport": transport}


def query(**values: str | int | None) -> dict[str, str | int]:
    """Query parameters, leaving out those that are None."""
    return {name: value for name, value in values.items() if value is not None}


def answer(response: httpx.Response) -> Any:
    """The JSON of a read answer, or the error it carries.

    Raises:
        ApiError: The node answered an error.
        _BadReplyError: The answer is not JSON.
    """
    return answer_json(response.status_code, response.content)


def answer_json(status: int, body: bytes) -> Any:
    """:func:`answer` from the status and the body's bytes."""
    try:
        payload = json.loads(body)
    except ValueError:
        raise _BadReplyError("node sent a non-JSON reply") from None
    if status >= 400:
        raise api_error(status, payload)
    return payload


def refusal(status: int, body: bytes) -> ApiError:
    """The :class:`ApiError` of an error answer to a stream request."""
    try:
        return api_error(status, json.loads(body))
    except ValueError:
        return api_error(status, None)


def api_error(status: int, payload: Any) -> ApiError:
    """The :class:`ApiError` of an error answer (``{"error": {"code", "message"}}``)."""
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        error = {}
    return ApiError(
        status, str(error.get("code", "unknown")), str(error.get("message", "request failed"))
    )


def obj(reply: Any) -> dict[str, Any]:
    if not isinstance(reply, dict):
        raise _BadReplyError("node reply is not a JSON object")
    return reply


def member(reply: Any, key: str) -> Any:
    found = obj(reply)
    if key not in found:
        raise _BadReplyError(f"node reply lacks {key!r}")
    return found[key]


def string(reply: Any, key: str) -> str:
    value = member(reply, key)
    if not isinstance(value, str):
        raise _BadReplyError(f"node reply field {key!r} is not a string")
    return value


def number(reply: Any, key: str) -> float:
    value = member(reply, key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _BadReplyError(f"node reply field {key!r} is not a number")
    return float(value)


def integer(reply: Any, key: str) -> int:
    value = member(reply, key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _BadReplyError(f"node reply field {key!r} is not an integer")
    return value


def items(reply: Any, key: str) -> list[Any]:
    value = member(reply, key)
    if not isinstance(value, list):
        raise _BadReplyError(f"node reply field {key!r} is not a list")
    return value


def contact(reply: Any) -> ContactInfo:
    return ContactInfo(string(reply, "name"), string(reply, "identity_id"))


def message(reply: Any) -> MessageInfo:
    return MessageInfo(
        message_id=string(reply, "message_id"),
        direction=string(reply, "direction"),
        peer_id=string(reply, "peer_id"),
        peer_name=None if member(reply, "peer_name") is None else string(reply, "peer_name"),
        text=string(reply, "text"),
        sent_at=number(reply, "sent_at"),
        stored_at=number(reply, "stored_at"),
    )


def message_page(reply: Any) -> MessagePage:
    """A page of messages; a node that predates cursors sends none (then they are None)."""
    found = obj(reply)
    before = None if found.get("before") is None else integer(found, "before")
    after = None if found.get("after") is None else integer(found, "after")
    missing = None if found.get("missing") is None else integer(found, "missing")
    return MessagePage([message(m) for m in items(found, "messages")], before, after, missing)
