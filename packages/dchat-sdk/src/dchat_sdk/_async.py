"""An asynchronous client of a node's API, for asyncio and trio programs (via anyio).

So far it covers what needs to wait: following the event stream
(:meth:`AsyncRemoteClient.events`, an async iterator that resumes after a
dropped connection without missing or repeating an event) and one page of
events or messages. The resume logic is :class:`~dchat_sdk._events.EventReader`'s,
shared with :meth:`RemoteClient.events`; this module only moves bytes.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import anyio
import httpx

from ._errors import NodeUnreachableError, _BadReplyError
from ._events import STREAM_READ_TIMEOUT, Backoff, Event, EventReader, event_from_json
from ._replies import MessagePage, api_error, integer, items, message_page

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
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            transport=transport,
        )

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
        try:
            payload = response.json()
        except ValueError:
            raise _BadReplyError("node sent a non-JSON reply") from None
        if response.status_code >= 400:
            raise api_error(response.status_code, payload)
        return payload

    async def message_page(
        self,
        peer: str | None = None,
        limit: int = 100,
        *,
        after: int | None = None,
        before: int | None = None,
    ) -> MessagePage:
        """One page of stored messages (as :meth:`RemoteClient.message_page`)."""
        params: dict[str, str | int] = {"limit": limit}
        for name, value in (("peer", peer), ("after", after), ("before", before)):
            if value is not None:
                params[name] = value
        return message_page(await self._get("/v1/messages", params))

    async def event_page(
        self, after: int | None = None, limit: int = 100
    ) -> tuple[list[Event], int]:
        """One page of events and the cursor to continue (as :meth:`RemoteClient.event_page`)."""
        params: dict[str, str | int] = {"limit": limit, "format": "json"}
        if after is not None:
            params["after"] = after
        reply = await self._get("/v1/events", params)
        return [event_from_json(e) for e in items(reply, "events")], integer(reply, "next")

    async def events(
        self, after: int | None = None, *, retries: int | None = None
    ) -> AsyncGenerator[Event, None]:
        """Follow the node's events as they happen, forever.

        An async generator: to stop early, close it (``contextlib.aclosing``)::

            async with aclosing(client.events(after=cursor)) as events:
                async for event in events:
                    ...

        Args:
            after: Start after this cursor (None: only events from now on).
            retries: Give up after this many failed reconnections in a row (None: never).

        A dropped connection (or a node restart) is resumed after the last
        event yielded: no event is missed or repeated.

        Raises:
            ApiError: The node refused: ``cursor_expired`` (re-list, follow from
                now), ``unauthorized``, or ``invalid_request``.
            NodeUnreachableError: ``retries`` reconnections failed in a row.
        """
        reader, backoff = EventReader(after), Backoff()
        timeout = httpx.Timeout(self._http.timeout.connect, read=STREAM_READ_TIMEOUT)
        while True:
            params, headers = reader.request()
            reader.connected()
            try:
                async with self._http.stream(
                    "GET", "/v1/events", params=params, headers=headers, timeout=timeout
                ) as response:
                    if response.status_code >= 400:
                        raise api_error(response.status_code, _json(await response.aread()))
                    async for chunk in response.aiter_text():
                        backoff.reset()
                        for event in reader.feed(chunk):
                            yield event
            except httpx.HTTPError as exc:
                failure: Exception = exc
            else:
                failure = NodeUnreachableError("the node closed the event stream")
            if retries is not None and backoff.failures >= retries:
                raise NodeUnreachableError(f"event stream lost: {type(failure).__name__}")
            await anyio.sleep(backoff.next_delay(reader.retry_s))


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None
