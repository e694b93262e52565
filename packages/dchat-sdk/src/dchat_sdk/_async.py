"""An asynchronous client of a node's API, for asyncio and trio programs (via anyio).

So far it covers what needs to wait: following the event stream
(:meth:`AsyncRemoteClient.events`, an async iterator that resumes after a
dropped connection without missing or repeating an event), one page of
events or messages, and attachments (a message's attachment, its bytes as an
async stream). The resume logic is :class:`~dchat_sdk._events.EventReader`'s,
shared with :meth:`RemoteClient.events`; this module only moves bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import anyio
import httpx

from ._errors import NodeUnreachableError
from ._events import STREAM_READ_TIMEOUT, Backoff, Event, EventReader, event_page
from ._replies import MessagePage, answer, client_options, message_page, obj, query, refusal
from ._socket import AsyncRemoteSocket

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator
    from types import TracebackType

__all__ = ("AsyncRemoteClient",)


class AsyncRemoteClient:
    """Asynchronous client of one node's local API (use ``async with``).

    Args:
        base_url: For example ``http://127.0.0.1:8470``.
        token: The node's bearer token.
        timeout: Seconds allowed for each request (a stream waits longer between
            bytes: the node sends a keep-alive every 15 s).
        transport: Optional httpx transport (e.g. ``httpx.MockTransport`` in tests).
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(**client_options(base_url, token, timeout, transport))
        self._socket_args = (base_url, token, timeout)

    def socket(self) -> AsyncRemoteSocket:
        """The node API's WebSocket, to open with ``async with``: sends and events."""
        base_url, token, timeout = self._socket_args
        return AsyncRemoteSocket(base_url, token, timeout=timeout)

    async def aclose(self) -> None:
        """Release the HTTP connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncRemoteClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _get(self, path: str, params: dict[str, str | int]) -> Any:
        try:
            response = await self._http.get(path, params=params)
        except httpx.HTTPError as exc:
            raise NodeUnreachableError(f"node API unreachable: {type(exc).__name__}") from None
        return answer(response)

    async def message_page(
        self,
        peer: str | None = None,
        limit: int = 100,
        *,
        after: int | None = None,
        before: int | None = None,
    ) -> MessagePage:
        """One page of stored messages (as :meth:`RemoteClient.message_page`)."""
        params = query(peer=peer or None, limit=limit, after=after, before=before)
        return message_page(await self._get("/v1/messages", params))

    async def attachment(self, message_id: str) -> dict[str, Any]:
        """The attachment of message ``message_id`` (as :meth:`RemoteClient.attachment`)."""
        return obj(await self._get(f"/v1/attachments/{quote(message_id, safe='')}", {}))

    async def attachment_bytes(self, message_id: str) -> AsyncGenerator[bytes, None]:
        """The attachment's bytes as they stream (fetched and checked by the node first).

        Raises:
            ApiError: ``attachment_refused`` (see :meth:`attachment` for why), ``not_found``.
        """
        timeout = httpx.Timeout(self._http.timeout.connect, read=STREAM_READ_TIMEOUT)
        url = f"/v1/attachments/{quote(message_id, safe='')}/content"
        try:
            async with self._http.stream("GET", url, timeout=timeout) as response:
                if response.status_code >= 400:
                    raise refusal(response.status_code, await response.aread())
                async for chunk in response.aiter_bytes():
                    yield chunk
        except httpx.HTTPError as exc:
            raise NodeUnreachableError(f"node API unreachable: {type(exc).__name__}") from None

    async def event_page(
        self, after: int | None = None, limit: int = 100
    ) -> tuple[list[Event], int]:
        """One page of events and the cursor to continue (as :meth:`RemoteClient.event_page`)."""
        return event_page(
            await self._get("/v1/events", query(after=after, limit=limit, format="json"))
        )

    async def events(
        self, after: int | None = None, *, retries: int | None = None
    ) -> AsyncGenerator[Event, None]:
        """Follow the node's events as they happen: :meth:`RemoteClient.events`, async.

        An async generator: to stop early, close it (``contextlib.aclosing``)::

            async with aclosing(client.events(after=cursor)) as events:
                async for event in events:
                    ...
        """
        reader, backoff = EventReader(after), Backoff()
        timeout = httpx.Timeout(self._http.timeout.connect, read=STREAM_READ_TIMEOUT)
        while True:
            params, headers = reader.request()
            reader.connected()
            failure: Exception | None = None
            try:
                async with self._http.stream(
                    "GET", "/v1/events", params=params, headers=headers, timeout=timeout
                ) as response:
                    if response.status_code >= 400:
                        raise refusal(response.status_code, await response.aread())
                    async for chunk in response.aiter_text():
                        backoff.reset()
                        for event in reader.feed(chunk):
                            yield event
            except httpx.HTTPError as exc:
                failure = exc
            await anyio.sleep(backoff.after_drop(failure, retries, reader.retry_s))
