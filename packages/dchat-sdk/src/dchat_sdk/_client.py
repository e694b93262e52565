"""``Client``: the async dchat client, connected to a node or embedding one.

One typed client for asyncio and trio programs (through anyio), in two modes::

    async with Client.connect("http://127.0.0.1:8470", token) as client:  # a running node
        ...
    async with Client.embedded("~/.dchat-bot", passphrase, relay="HOST:PORT") as client:
        ...                                        # the node runs inside this process

Both talk to the node's API, so both offer the same calls. The endpoint code
lives once, in :class:`RemoteClient` (and its mixins); each request method of
:class:`Client` runs that code in a worker thread (``anyio.to_thread``), so an
await never blocks the event loop and a cancelled await returns at once. The
event stream and attachment bytes are natively async
(:class:`AsyncRemoteClient`). :class:`SyncClient` is the same for scripts.
"""

from __future__ import annotations

import functools
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

import anyio

from ._async import AsyncRemoteClient
from ._embedded import EmbeddedNode
from ._errors import NodeUnreachableError
from ._remote import RemoteClient

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Callable, Coroutine
    from pathlib import Path
    from types import TracebackType

    from ._events import Event
    from ._socket import AsyncRemoteSocket

__all__ = ("Client", "SyncClient")

P = ParamSpec("P")
T = TypeVar("T")

START_TIMEOUT = 60.0
"""Seconds an embedded node may take to open its database and serve its API."""


def _awaited(
    method: Callable[Concatenate[RemoteClient, P], T], example: str = ""
) -> Callable[Concatenate[Client, P], Coroutine[Any, Any, T]]:
    """``method`` of :class:`RemoteClient` as an async method of :class:`Client`.

    ``example``: lines of code shown under "Example::" in the method's docstring.
    """

    async def call(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> T:
        run = functools.partial(method, self._remote(), *args, **kwargs)
        return await anyio.to_thread.run_sync(run, abandon_on_cancel=True)

    functools.update_wrapper(call, method)
    call.__doc__ = f"``await``: {(method.__doc__ or '').rstrip()}"
    if example:
        lines = "".join(f"\n            {line}" for line in example.splitlines())
        call.__doc__ += f"\n\n        Example::\n{lines}\n"
    return call


class Client:
    """Async client of one dchat user node (``async with``); see the two constructors.

    Every request method mirrors the :class:`RemoteClient` method of the same
    name (same arguments, same typed result, same errors), awaited. Example::

        async with Client.connect(url, token) as client:
            await client.add_contact("bob", bob_card)
            await client.send("bob", "hi")
            async for event in client.events(after=cursor):
                if event.message is not None:
                    print(event.message.peer_name, event.message.text)
                cursor = event.cursor   # keep it to resume later

    Raises (any call):
        ApiError: the node refused (``.status``, ``.code``).
        NodeUnreachableError: no answer (or the client is not open).
    """

    def __init__(self, url: str | None, token: str | None, node: EmbeddedNode | None) -> None:
        self._url, self._token, self._node = url, token, node
        self._timeout = 10.0
        self._sync: RemoteClient | None = None
        self._async: AsyncRemoteClient | None = None

    @classmethod
    def connect(cls, api_url: str, token: str, *, timeout: float = 10.0) -> Client:
        """A client of the running node whose API is at ``api_url`` (``api.json`` has both)."""
        client = cls(api_url, token, None)
        client._timeout = timeout
        return client

    @classmethod
    def embedded(
        cls, data_dir: str | Path, passphrase: str, *, timeout: float = 10.0, **config: Any
    ) -> Client:
        """A client whose user node runs inside this process, started by ``async with``.

        Needs ``dchat-sdk[embedded]`` (dchat-node). ``config`` sets node options
        as ``dchat.toml`` does, e.g. ``relay="HOST:PORT"``, ``poll_interval=0.5``.
        The node stops when the ``async with`` block ends. Example::

            async with Client.embedded("bot-data", passphrase, relay=relay) as bot:
                await bot.create_identity("bot")

        Raises (on entering):
            DataDirLockedError: another node runs on ``data_dir``.
            WrongPassphraseError: ``passphrase`` does not unlock its database.
            EmbeddedNodeError: any other reason it did not start (the message says).
        """
        client = cls(None, None, EmbeddedNode(data_dir, passphrase, config))
        client._timeout = timeout
        return client

    async def __aenter__(self) -> Client:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def open(self) -> None:
        """Start the embedded node (if any) and the HTTP clients; ``async with`` calls it."""
        if self._node is not None and self._url is None:
            start = functools.partial(self._node.start, START_TIMEOUT)
            self._url, self._token = await anyio.to_thread.run_sync(start)
        url, token = self.api
        self._sync = RemoteClient(url, token, timeout=self._timeout)
        self._async = AsyncRemoteClient(url, token, timeout=self._timeout)

    async def aclose(self) -> None:
        """Close the HTTP clients and stop the embedded node (if any)."""
        with anyio.CancelScope(shield=True):
            if self._async is not None:
                await self._async.aclose()
            if self._sync is not None:
                self._sync.close()
            self._sync = self._async = None
            if self._node is not None:
                await anyio.to_thread.run_sync(self._node.stop)
                self._url = self._token = None

    @property
    def api(self) -> tuple[str, str]:
        """The node API's URL and token (an embedded node's too, e.g. for ``dchat``)."""
        if self._url is None or self._token is None:
            raise _closed()
        return self._url, self._token

    def _remote(self) -> RemoteClient:
        if self._sync is None:
            raise _closed()
        return self._sync

    def _stream(self) -> AsyncRemoteClient:
        if self._async is None:
            raise _closed()
        return self._async

    async def events(
        self, after: int | None = None, *, retries: int | None = None
    ) -> AsyncGenerator[Event, None]:
        """Follow the node's events as they happen, forever (``async for``; break to stop).

        ``after``: resume after this cursor (each :class:`Event` has one; keep
        the last). None: only events from now. A dropped connection is
        resumed: nothing is missed or repeated. See :meth:`RemoteClient.events`.

        Raises:
            ApiError: ``cursor_expired`` (410): re-list messages, follow from now.
        """
        async with aclosing(self._stream().events(after, retries=retries)) as events:
            async for event in events:
                yield event

    async def attachment_bytes(self, message_id: str) -> AsyncGenerator[bytes, None]:
        """An attachment's bytes as they stream (see :meth:`AsyncRemoteClient.attachment_bytes`)."""
        async with aclosing(self._stream().attachment_bytes(message_id)) as chunks:
            async for chunk in chunks:
                yield chunk

    # Node and identity
    health = _awaited(RemoteClient.health)
    status = _awaited(RemoteClient.status)
    create_identity = _awaited(RemoteClient.create_identity)
    card = _awaited(RemoteClient.card)
    document = _awaited(RemoteClient.document)
    peer_document = _awaited(RemoteClient.peer_document)
    request = _awaited(RemoteClient.request)
    # Contacts, handles, requests, blocking
    add_contact = _awaited(RemoteClient.add_contact)
    add_contact_by_handle = _awaited(RemoteClient.add_contact_by_handle)
    contacts = _awaited(RemoteClient.contacts)
    remove_contact = _awaited(RemoteClient.remove_contact)
    rename_contact = _awaited(RemoteClient.rename_contact)
    lookup_handle = _awaited(RemoteClient.lookup_handle)
    own_handle = _awaited(RemoteClient.own_handle)
    handle_action = _awaited(RemoteClient.handle_action)
    requests = _awaited(RemoteClient.requests)
    accept_request = _awaited(RemoteClient.accept_request)
    ignore_request = _awaited(RemoteClient.ignore_request)
    block = _awaited(RemoteClient.block)
    unblock = _awaited(RemoteClient.unblock)
    blocked = _awaited(RemoteClient.blocked)
    notices = _awaited(RemoteClient.notices)
    # Messages, receipts, conversations
    send = _awaited(RemoteClient.send)
    reply = _awaited(RemoteClient.reply)
    messages = _awaited(RemoteClient.messages)
    message_page = _awaited(RemoteClient.message_page)
    event_page = _awaited(RemoteClient.event_page)
    conversations = _awaited(RemoteClient.conversations)
    conversation = _awaited(RemoteClient.conversation)
    mark_read = _awaited(RemoteClient.mark_read)
    typing = _awaited(RemoteClient.typing)
    disappear = _awaited(RemoteClient.disappear)
    edit = _awaited(RemoteClient.edit)
    delete_for_everyone = _awaited(RemoteClient.delete_for_everyone)
    react = _awaited(RemoteClient.react)
    forward = _awaited(RemoteClient.forward)
    search = _awaited(RemoteClient.search)
    conversation_settings = _awaited(RemoteClient.conversation_settings)
    # Attachments and locations
    send_file = _awaited(RemoteClient.send_file)
    send_location = _awaited(RemoteClient.send_location)
    attachment = _awaited(RemoteClient.attachment)
    save_attachment = _awaited(RemoteClient.save_attachment)
    # Private groups
    groups = _awaited(RemoteClient.groups)
    create_group = _awaited(RemoteClient.create_group)
    group = _awaited(RemoteClient.group)
    invite_to_group = _awaited(RemoteClient.invite_to_group)
    remove_from_group = _awaited(RemoteClient.remove_from_group)
    join_group = _awaited(RemoteClient.join_group)
    leave_group = _awaited(RemoteClient.leave_group)
    create_group_link = _awaited(RemoteClient.create_group_link)
    group_links = _awaited(RemoteClient.group_links)
    revoke_group_link = _awaited(RemoteClient.revoke_group_link)
    join_group_by_link = _awaited(RemoteClient.join_group_by_link)
    rename_group = _awaited(RemoteClient.rename_group)
    send_to_group = _awaited(RemoteClient.send_to_group)
    add_bot_to_group = _awaited(RemoteClient.add_bot_to_group)
    set_bot_grant = _awaited(RemoteClient.set_bot_grant)
    group_messages = _awaited(RemoteClient.group_messages)
    # Bots, from the user's side
    bot_press = _awaited(RemoteClient.bot_press)
    bot_commands = _awaited(RemoteClient.bot_commands)
    bot_info = _awaited(RemoteClient.bot_info)
    bot_inline = _awaited(RemoteClient.bot_inline)
    bot_pick = _awaited(RemoteClient.bot_pick)
    # A bot's webhook (receivers check deliveries with verify_webhook)
    set_bot_webhook = _awaited(RemoteClient.set_bot_webhook)
    bot_webhook = _awaited(RemoteClient.bot_webhook)
    delete_bot_webhook = _awaited(RemoteClient.delete_bot_webhook)
    bot_webhook_dead_letters = _awaited(RemoteClient.bot_webhook_dead_letters)
    retry_bot_webhook_dead_letters = _awaited(RemoteClient.retry_bot_webhook_dead_letters)
    # A bot's own settings and tokens
    create_bot = _awaited(RemoteClient.create_bot)
    bot = _awaited(RemoteClient.bot)
    bot_token = _awaited(RemoteClient.bot_token)
    revoke_bot_token = _awaited(RemoteClient.revoke_bot_token)
    set_bot_commands = _awaited(RemoteClient.set_bot_commands)
    set_bot_description = _awaited(RemoteClient.set_bot_description)
    set_bot_open = _awaited(RemoteClient.set_bot_open)
    set_bot_groups = _awaited(RemoteClient.set_bot_groups)
    # More of groups, contacts, search, apps
    anchor_group = _awaited(RemoteClient.anchor_group)
    invite_many_to_group = _awaited(RemoteClient.invite_many_to_group)
    block_contact = _awaited(RemoteClient.block_contact)
    rebuild_search = _awaited(RemoteClient.rebuild_search)
    app_login_link = _awaited(RemoteClient.app_login_link)
    # Channels
    channels = _awaited(RemoteClient.channels)
    create_channel = _awaited(RemoteClient.create_channel)
    subscribe_channel = _awaited(RemoteClient.subscribe_channel)
    unsubscribe_channel = _awaited(RemoteClient.unsubscribe_channel)
    channel = _awaited(RemoteClient.channel)
    channel_link = _awaited(RemoteClient.channel_link)
    post_to_channel = _awaited(RemoteClient.post_to_channel)
    channel_posts = _awaited(RemoteClient.channel_posts)
    add_channel_publisher = _awaited(RemoteClient.add_channel_publisher)
    # Metadata privacy: cover traffic, onion mode, mailbox put authorization
    cover_traffic = _awaited(
        RemoteClient.cover_traffic,
        'cover = await client.cover_traffic()\nprint(cover["on"], cover["loops_sent"])',
    )
    set_cover_traffic = _awaited(
        RemoteClient.set_cover_traffic, "cover = await client.set_cover_traffic(True, 400)"
    )
    onion_mode = _awaited(
        RemoteClient.onion_mode, 'modes = (await client.onion_mode())["onion"]["identities"]'
    )
    set_onion_mode = _awaited(
        RemoteClient.set_onion_mode, "await client.set_onion_mode(True)  # our identity"
    )
    put_auth = _awaited(
        RemoteClient.put_auth, 'if (await client.put_auth())["mode"] == "proof": ...'
    )
    # Payments: in a conversation, stealth, paid relay tokens
    pay = _awaited(RemoteClient.pay, 'sent = await client.pay("bob", 40, "lunch")\nsent["tx"]')
    payments = _awaited(RemoteClient.payments, 'for p in (await client.payments())["pending"]: ...')
    stealth_address = _awaited(
        RemoteClient.stealth_address, "meta = await client.stealth_address()  # publish it"
    )
    stealth_status = _awaited(
        RemoteClient.stealth_status, 'found = (await client.stealth_status())["received"]'
    )
    stealth_pay = _awaited(
        RemoteClient.stealth_pay, 'paid = await client.stealth_pay("bob", 40)\npaid["account"]'
    )
    stealth_scan = _awaited(
        RemoteClient.stealth_scan, 'total = (await client.stealth_scan())["stealth_balance"]'
    )
    stealth_sweep = _awaited(
        RemoteClient.stealth_sweep, 'swept = (await client.stealth_sweep(account_hex))["swept"]'
    )
    buy_tokens = _awaited(
        RemoteClient.buy_tokens, 'await client.buy_tokens("relay.example:8460", 100)'
    )
    tokens = _awaited(RemoteClient.tokens, 'held = (await client.tokens())["total"]')

    def socket(self) -> AsyncRemoteSocket:
        """The node API's WebSocket (``async with``): sends and events on one connection.

        Example::

            async with client.socket() as socket:
                await socket.send("bob", "hi")
        """
        return self._stream().socket()


def _closed() -> Exception:
    return NodeUnreachableError("the client is not open (use 'async with')")


class SyncClient(RemoteClient):
    """The synchronous facade for scripts: :class:`RemoteClient`, optionally embedding its node.

    ``SyncClient.connect(url, token)`` is a :class:`RemoteClient`;
    ``SyncClient.embedded(data_dir, passphrase, **config)`` starts the node in
    this process first (errors as :meth:`Client.embedded`) and stops it on
    ``close()`` / leaving ``with``::

        with SyncClient.embedded("bot-data", passphrase, relay=relay) as bot:
            print(bot.card())
    """

    _node: EmbeddedNode | None = None

    @classmethod
    def connect(cls, api_url: str, token: str, *, timeout: float = 10.0) -> SyncClient:
        """A client of the running node at ``api_url``."""
        return cls(api_url, token, timeout=timeout)

    @classmethod
    def embedded(
        cls, data_dir: str | Path, passphrase: str, *, timeout: float = 10.0, **config: Any
    ) -> SyncClient:
        """Start a user node in this process (blocking) and return its client."""
        node = EmbeddedNode(data_dir, passphrase, config)
        url, token = node.start(START_TIMEOUT)
        client = cls(url, token, timeout=timeout)
        client._node = node
        return client

    def close(self) -> None:
        """Close the connection pool and stop the embedded node (if any)."""
        super().close()
        if self._node is not None:
            self._node.stop()
            self._node = None
