"""A client for a dchat node's local HTTP API.

The node serves its API on loopback with a bearer token (see the node's
``api.json``). This client is what the ``dchat`` CLI, bots and apps use to drive
a running node; every failure surfaces as a :class:`DchatSdkError` subclass.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ._bot_webhooks import WebhookCalls
from ._bots import BotCalls
from ._channels import ChannelCalls
from ._conversations import ConversationCalls
from ._errors import ApiError, DchatSdkError, NodeUnreachableError
from ._events import STREAM_READ_TIMEOUT, Backoff, Event, EventReader, event_page
from ._groups import GroupCalls
from ._models import CoverTraffic, OnionStatus, PutAuth, shaped
from ._plainhttp import PlainHttp
from ._replies import (
    ContactInfo,
    MessageInfo,
    MessagePage,
    answer,
    answer_json,
    client_options,
    contact,
    integer,
    items,
    message_page,
    obj,
    query,
    refusal,
    string,
)
from ._stealth import StealthCalls

UPLOAD_PIECE = 256 * 1024
"""Bytes read from disk per piece of a streamed upload."""


def guess_type(name: str) -> str:
    """The media type a file name suggests (``application/octet-stream`` if none)."""
    import mimetypes  # only for uploads: the CLI starts fast without it

    return mimetypes.guess_type(name)[0] or "application/octet-stream"


if TYPE_CHECKING:
    from collections.abc import Iterator

    import httpx

    from ._socket import RemoteSocket

__all__ = (
    "ApiError",
    "ContactInfo",
    "DchatSdkError",
    "MessageInfo",
    "NodeUnreachableError",
    "RemoteClient",
)


class RemoteClient(
    ConversationCalls, GroupCalls, ChannelCalls, BotCalls, WebhookCalls, StealthCalls
):
    """Synchronous client of one node's local API.

    Plain calls to an ``http://`` API use the standard library (``_plainhttp``:
    a script starts without httpx); streams and uploads, ``https://`` and a
    ``transport`` use httpx, imported then.

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
        self._options = client_options(base_url, token, timeout, transport)
        self._httpx: httpx.Client | None = None
        self._plain = None
        if transport is None and base_url.startswith("http://"):
            self._plain = PlainHttp(base_url, self._options["headers"], timeout)
        self._socket_args = (base_url, token, timeout)

    @property
    def _http(self) -> httpx.Client:
        """The httpx client, made on first use (streams, uploads, https, a transport)."""
        if self._httpx is None:
            import httpx

            self._httpx = httpx.Client(**self._options)
        return self._httpx

    @classmethod
    def from_data_dir(cls, data_dir: str | Path, *, timeout: float = 10.0) -> RemoteClient:
        """Connect to the node whose data directory is ``data_dir`` (reads ``api.json``)."""
        path = Path(data_dir) / "api.json"
        try:
            info = json.loads(path.read_text())
            return cls(str(info["url"]), str(info["token"]), timeout=timeout)
        except (OSError, ValueError, KeyError, TypeError):
            raise NodeUnreachableError(f"no running node found for {data_dir}") from None

    def socket(self) -> RemoteSocket:
        """Open the node API's WebSocket (sends and events on one connection; ``with``)."""
        from ._socket import RemoteSocket  # wsproto and anyio: not for plain requests

        base_url, token, timeout = self._socket_args
        return RemoteSocket(base_url, token, timeout=timeout)

    def close(self) -> None:
        """Release the HTTP connections."""
        if self._plain is not None:
            self._plain.close()
        if self._httpx is not None:
            self._httpx.close()

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
        timeout: float | None = None,
    ) -> Any:
        if self._plain is not None:
            return answer_json(*self._plain.request(method, path, body, params, timeout))
        import httpx

        wait = httpx.USE_CLIENT_DEFAULT if timeout is None else timeout
        try:
            response = self._http.request(method, path, json=body, params=params, timeout=wait)
        except httpx.HTTPError as exc:
            raise NodeUnreachableError(f"node API unreachable: {type(exc).__name__}") from None
        return answer(response)

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
        return obj(self._call(method, path, body, params))

    def send_file(
        self,
        to: str,
        path: str | Path,
        *,
        kind: str = "document",
        media_type: str | None = None,
        caption: str = "",
        duration_ms: int = 0,
        waveform: bytes = b"",
    ) -> dict[str, Any]:
        """Send the file at ``path`` to ``to``, streamed from disk (never read whole).

        ``kind``: image, video, audio, voice or document; ``media_type``:
        guessed from the name when None (the node checks it against the bytes).
        Returns the attachment's description (``message_id``, ``blob_id``, ...).

        Raises:
            ApiError: e.g. ``ContentTypeMismatchError`` (the bytes are not the
                type), ``UploadTooLargeError``, ``QuotaExceededError``.
        """
        import httpx

        path = Path(path)
        params: dict[str, str | int] = {
            "to": to,
            "kind": kind,
            "type": media_type or guess_type(path.name),
            "name": path.name,
            "caption": caption,
            "duration_ms": duration_ms,
            "waveform": waveform.hex(),
        }
        timeout = httpx.Timeout(self._http.timeout.connect, read=STREAM_READ_TIMEOUT)
        with path.open("rb") as file:
            chunks = iter(lambda: file.read(UPLOAD_PIECE), b"")
            try:
                response = self._http.post(
                    "/v1/attachments", params=params, content=chunks, timeout=timeout
                )
            except httpx.HTTPError as exc:
                raise NodeUnreachableError(f"node API unreachable: {type(exc).__name__}") from None
        return obj(answer(response))

    def send_location(self, to: str, lat: float, lon: float, label: str = "") -> dict[str, Any]:
        """Send a location (coordinates in degrees, an optional label; no map is fetched)."""
        body = {"to": to, "lat": lat, "lon": lon, "label": label}
        return self.request("POST", "/v1/locations", body)

    def attachment(self, message_id: str) -> dict[str, Any]:
        """The attachment of message ``message_id`` (kind, type, size, state, ...)."""
        return self.request("GET", f"/v1/attachments/{quote(message_id, safe='')}")

    def save_attachment(self, message_id: str, path: str | Path) -> int:
        """Fetch (if needed) and write the attachment's bytes to ``path``; returns their count.

        The bytes are streamed into ``path.part`` and renamed once complete.

        Raises:
            ApiError: ``attachment_refused`` (the file was not what its message
                declared: the message's attachment says why), ``not_found``.
        """
        import httpx

        path, count = Path(path), 0
        part = path.with_name(path.name + ".part")
        timeout = httpx.Timeout(self._http.timeout.connect, read=STREAM_READ_TIMEOUT)
        url = f"/v1/attachments/{quote(message_id, safe='')}/content"
        try:
            with self._http.stream("GET", url, timeout=timeout) as response:
                if response.status_code >= 400:
                    raise refusal(response.status_code, response.read())
                with part.open("wb") as out:
                    for chunk in response.iter_bytes():
                        count += out.write(chunk)
        except httpx.HTTPError as exc:
            raise NodeUnreachableError(f"node API unreachable: {type(exc).__name__}") from None
        part.replace(path)
        return count

    def document(self) -> dict[str, Any]:
        """This identity's current identity document (summary and signed bytes)."""
        return self.request("GET", "/v1/identity/document")

    def peer_document(self, identity_id: str) -> dict[str, Any]:
        """The newest document received from the identity ``identity_id``."""
        return self.request("GET", f"/v1/documents/{identity_id}")

    def health(self) -> dict[str, Any]:
        """The node's liveness report."""
        return obj(self._call("GET", "/health"))

    def status(self) -> dict[str, Any]:
        """Role, identity, counters."""
        return obj(self._call("GET", "/status"))

    def onion_mode(self) -> OnionStatus:
        """Each local identity's onion mode (``identities``: id -> on) and the onion relays.

        ``routes`` says where routes come from (``directory``: the chain's relay
        directory, every hop of another operator; ``manual``: ``onion_relays``);
        ``route_error`` why the last route could not be chosen (None: it was);
        ``guards`` the pinned first hops of directory routes (:class:`OnionGuard`);
        ``reply_blocks`` the single-use reply blocks (protocol §45, :class:`ReplyBlockCounts`).
        """
        return shaped(self._call("GET", "/v1/privacy/onion"), OnionStatus)

    def set_onion_mode(self, on: bool, *, identity: str | None = None) -> OnionStatus:
        """Turn onion mode on or off for our identity, or for the burner ``identity``.

        In onion mode every envelope the identity sends reaches the recipient's
        mailbox relay through three relays (protocol §39), so that relay never
        sees the sender's address (prekey fetches go through onions too). Refused
        (``no_onion_relays``) while the node has neither relay discovery nor
        two ``onion_relays`` configured.
        """
        body: dict[str, Any] = {"on": on}
        if identity is not None:
            body["identity"] = identity
        return shaped(self._call("PUT", "/v1/privacy/onion", body), OnionStatus)

    def put_auth(self) -> PutAuth:
        """What the node hands contacts for its mailbox: ``mode`` (``"token"`` or ``"proof"``,
        the ``put_auth`` setting), tokens and contact secrets issued, the ring registered."""
        return shaped(self._call("GET", "/v1/put-auth"), PutAuth)

    def create_identity(self, name: str) -> str:
        """Create this node's identity; returns the identity id."""
        return string(self._call("POST", "/v1/identity", {"name": name}), "identity_id")

    def card(self) -> str:
        """This node's contact card (text form), to hand to others."""
        return string(self._call("GET", "/v1/identity"), "card")

    def app_login_link(self) -> str:
        """A one-time link that logs a browser in to the node's chat app (60 s, works once)."""
        return string(self._call("POST", "/v1/app/login"), "url")

    def add_contact(self, name: str, card: str) -> ContactInfo:
        """Add a contact from their card."""
        return contact(self._call("POST", "/v1/contacts", {"name": name, "card": card}))

    def add_contact_by_handle(self, handle: str, name: str | None = None) -> ContactInfo:
        """Add the owner of a public ``handle`` (``@alice``) as a contact.

        The node looks the handle up on the chat chain through its light client
        (commit certificates and a Merkle proof) and adds the card found there;
        ``name`` defaults to the handle.
        """
        body: dict[str, Any] = {"handle": handle}
        if name is not None:
            body["name"] = name
        return contact(self._call("POST", "/v1/contacts", body))

    def lookup_handle(self, handle: str) -> dict[str, Any]:
        """The live ``handle`` as the chat chain certifies it (404 ``not_found`` if none)."""
        return self.request("GET", f"/v1/handles/{quote(handle, safe='@')}")

    def own_handle(self) -> dict[str, Any] | None:
        """This identity's public handle, verified on chain, or None."""
        found = self.request("GET", "/v1/handle")["handle"]
        return None if found is None else obj(found)

    def handle_action(self, action: str, name: str | None = None) -> dict[str, Any] | None:
        """``register`` (with ``name``), ``renew`` or ``release`` this identity's handle.

        Returns the handle afterwards (None once released). Registering solves a
        proof of work on the node and waits until the chain certified the result.
        """
        body: dict[str, Any] = {"action": action}
        if name is not None:
            body["name"] = name
        found = self.request("POST", "/v1/handle", body)["handle"]
        return None if found is None else obj(found)

    def contacts(self) -> list[ContactInfo]:
        """All contacts, by name."""
        return [contact(c) for c in items(self._call("GET", "/v1/contacts"), "contacts")]

    def send(self, to: str, text: str) -> str:
        """Send ``text`` to ``to``; returns the message id.

        ``to`` is a contact's name or the identity id of anyone whose card the
        node holds (a contact, or the sender of a message request), so any
        received message can be answered::

            for m in client.messages():
                if m.direction == "in":
                    client.send(m.peer_id, "got it")
        """
        return string(self._call("POST", "/v1/messages", {"to": to, "text": text}), "message_id")

    def messages(
        self,
        peer: str | None = None,
        limit: int = 100,
        *,
        after: int | None = None,
        before: int | None = None,
    ) -> list[MessageInfo]:
        """Stored messages, oldest first (optionally with one contact only).

        Without a cursor the newest ``limit``; see :meth:`message_page` for paging.
        """
        return self.message_page(peer, limit, after=after, before=before).messages

    def message_page(
        self,
        peer: str | None = None,
        limit: int = 100,
        *,
        after: int | None = None,
        before: int | None = None,
    ) -> MessagePage:
        """One page of stored messages, with the cursors to continue.

        ``after=C``: the ``limit`` messages stored after cursor ``C``;
        ``before=C``: the ``limit`` stored before it; neither: the newest.
        ``page.before`` pages back (None at the oldest), ``page.after`` forward.
        """
        # Encoded by the client: names may hold '&', '#', '+'.
        params = query(peer=peer or None, limit=limit, after=after, before=before)
        return message_page(self._call("GET", "/v1/messages", params=params))

    def event_page(self, after: int | None = None, limit: int = 100) -> tuple[list[Event], int]:
        """One page of events after ``after`` (None: from now) and the cursor to continue.

        For clients that cannot hold a stream open; :meth:`events` follows live.

        Raises:
            ApiError: ``cursor_expired`` (HTTP 410): events after ``after`` were
                pruned; re-list the messages and follow from the returned end.
        """
        params = query(after=after, limit=limit, format="json")
        return event_page(self._call("GET", "/v1/events", params=params))

    def events(self, after: int | None = None, *, retries: int | None = None) -> Iterator[Event]:
        """Follow the node's events as they happen, forever (a generator; break to stop).

        Args:
            after: Start after this cursor (None: only events from now on).
            retries: Give up after this many failed reconnections in a row
                (None: never; each waits longer, up to a few seconds).

        A dropped connection (or a node restart) is resumed after the last
        event yielded: no event is missed or repeated.

        Raises:
            ApiError: The node refused: ``cursor_expired`` (re-list, follow from
                now), ``unauthorized``, or ``invalid_request``.
            NodeUnreachableError: ``retries`` reconnections failed in a row.
        """
        import httpx

        reader, backoff = EventReader(after), Backoff()
        timeout = httpx.Timeout(self._http.timeout.connect, read=STREAM_READ_TIMEOUT)
        while True:
            params, headers = reader.request()
            reader.connected()
            failure: Exception | None = None
            try:
                with self._http.stream(
                    "GET", "/v1/events", params=params, headers=headers, timeout=timeout
                ) as response:
                    if response.status_code >= 400:
                        raise refusal(response.status_code, response.read())
                    for chunk in response.iter_text():
                        backoff.reset()
                        yield from reader.feed(chunk)
            except httpx.HTTPError as exc:
                failure = exc
            time.sleep(backoff.after_drop(failure, retries, reader.retry_s))

    def requests(self) -> list[dict[str, Any]]:
        """Open message requests (senders who are not contacts), oldest first."""
        return [obj(r) for r in items(self._call("GET", "/v1/requests"), "requests")]

    def accept_request(self, identity_id: str, name: str) -> ContactInfo:
        """Make the sender of a request a contact named ``name``."""
        reply = self._call("POST", f"/v1/requests/{identity_id}/accept", {"name": name})
        return contact(reply)

    def ignore_request(self, identity_id: str) -> int:
        """Drop a request and delete its messages; returns how many were deleted."""
        return integer(self._call("POST", f"/v1/requests/{identity_id}/ignore"), "deleted")

    def block(self, identity_id: str) -> int:
        """Block an identity: its messages are dropped from now on (and a request's deleted)."""
        return integer(self._call("POST", "/v1/blocked", {"identity_id": identity_id}), "deleted")

    def unblock(self, identity_id: str) -> None:
        """Let a blocked identity's messages through again."""
        self._call("DELETE", f"/v1/blocked/{identity_id}")

    def blocked(self) -> list[str]:
        """Blocked identity ids."""
        return [str(i) for i in items(self._call("GET", "/v1/blocked"), "blocked")]

    def notices(self) -> list[dict[str, Any]]:
        """Notices for the user, e.g. ``{"kind": "session_reset", "peer": ..., "at_ms": ...}``."""
        return [obj(n) for n in items(self._call("GET", "/v1/notices"), "notices")]

    def cover_traffic(self) -> CoverTraffic:
        """The cover traffic's state: ``on``, ``budget`` (bytes/s), loops sent, back, missing ..."""
        return shaped(self._call("GET", "/v1/privacy/cover"), CoverTraffic)

    def set_cover_traffic(self, on: bool, budget: int | None = None) -> CoverTraffic:
        """Turn cover traffic on (at ``budget`` bytes/s; default: the node's) or off; its state.

        Kept across the node's restarts. A budget too small to carry one
        envelope a minute is refused (``CoverInputError``).
        """
        body: dict[str, Any] = {"on": on}
        if budget is not None:
            body["budget"] = budget
        return shaped(self._call("PUT", "/v1/privacy/cover", body), CoverTraffic)
