"""How the API answers the errors of the layers below: one mapping for HTTP and the socket.

Every error answer has one shape, ``{"error": {"code": str, "message": str}}``;
:func:`error_of` gives the HTTP status, code and message for an exception of
the node or the engines, so a route (``_app.py``'s handlers) and a socket
request (``_socket.py``) answer the same failure the same way.
"""

from __future__ import annotations

from dchat_core import CallerError, DchatError, InvalidIdError, PeerError
from dchat_identity import DchatIdentityError, InvalidCardError
from dchat_identity.lowlevel import RecoveryRefusedError
from dchat_messaging import AttachmentRefusedError, ContentError, RequestError
from dchat_messaging.lowlevel import ChannelError
from dchat_storage import CursorExpiredError, DuplicateError

from .._errors import NodeStateError

__all__ = ("ERROR_SCHEMA", "ROUTING_CODES", "error_of")

#: The JSON schema of every error answer (the OpenAPI document's ``Error``).
ERROR_SCHEMA: dict[str, object] = {
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "additionalProperties": False,
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}

#: Codes of the answers FastAPI and the router give themselves: a body that is
#: not even text (400), no route (404), not this method (405).
ROUTING_CODES = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed"}

_STATE_STATUS = {
    "no_identity": 409,
    "unauthorized": 401,
    "attachment_refused": 422,
    "invalid_request": 422,
    "identity_exists": 409,
    "no_relay": 409,
    "no_onion_relays": 409,
    "unknown_contact": 404,
    "unknown_group": 404,
    "not_allowed": 403,
    "unknown_message": 404,
    "not_author": 403,
    "wrong_role": 404,
    "wrong_chain": 404,
    "not_found": 404,
    "unknown_device": 404,
    "no_pairing": 404,
    "rate_limited": 429,
    "bot_timeout": 504,
    "burner_expired": 410,
    "not_ready": 503,
    "no_card": 409,
    "no_chain": 409,
    "chain_unreachable": 503,
    "handle_refused": 409,
    "payment_failed": 409,
    "no_stealth_address": 409,
    "unswept_funds": 409,
    "stale_handle": 409,
    "unknown_channel": 404,
    "not_publisher": 403,
    "not_owner": 403,
    "bad_link": 400,
    "link_expired": 410,
    "bad_key": 400,
    "bad_text": 400,
    "bad_title": 400,
    "no_relays": 400,
}


def error_of(exc: Exception) -> tuple[int, str, str] | None:
    """The HTTP status, code and message the API answers ``exc`` with (None: not ours).

    One mapping for the HTTP routes (the handlers below) and the socket
    (``_socket.py``), so an error reads the same on both.
    """
    if isinstance(exc, NodeStateError | RequestError | ChannelError):
        return _STATE_STATUS.get(exc.code, 409), exc.code, str(exc)
    if isinstance(exc, CursorExpiredError):
        return 410, exc.code, str(exc)
    if isinstance(exc, AttachmentRefusedError):  # a descriptor or file that lies, by reason
        return 422, exc.code, str(exc)
    if isinstance(exc, DuplicateError):
        return 409, "duplicate", str(exc)
    if isinstance(exc, RecoveryRefusedError):  # named by type, as when it was the node's
        return 400, type(exc).__name__, str(exc)
    if isinstance(exc, InvalidCardError | ContentError | InvalidIdError | DchatIdentityError):
        return 400, "invalid_input", str(exc)
    if isinstance(exc, CallerError | PeerError):
        return 400, type(exc).__name__, str(exc)
    if isinstance(exc, DchatError):
        return 503, "unavailable", "the node could not complete the request"
    return None
