"""What the node answers, read into typed records.

A reply of the wrong shape is the node's fault, reported as
:class:`_BadReplyError` instead of leaking ``KeyError``/``TypeError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._errors import ApiError, _BadReplyError

__all__ = (
    "ContactInfo",
    "MessageInfo",
    "MessagePage",
    "api_error",
    "contact",
    "integer",
    "items",
    "member",
    "message",
    "message_page",
    "number",
    "obj",
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
    """

    messages: list[MessageInfo]
    before: int | None
    after: int | None


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
    return MessagePage([message(m) for m in items(found, "messages")], before, after)
