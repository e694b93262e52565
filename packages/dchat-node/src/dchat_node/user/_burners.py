"""Burners on a user node: short-lived identities nobody can link to the main one.

A burner (:class:`dchat_identity.Burner`) is a whole identity from fresh
randomness. The node keeps the device's :class:`dchat_identity.BurnerStore`
(private keys and the creation rate limit) sealed at rest in the settings
table, and registers every live burner with
:meth:`UserService.add_identity`, so replies are fetched from the burner's
own mailbox over a connection authenticated by the burner's own mailbox key.

Unlinkability: a burner's card, envelopes, mailbox id and relay connection
key are all the burner's; sending goes through a fresh connection key per
delivery like every send. Contacts a burner writes to are *quiet* contacts:
adding them sends no document, and the main identity's document fan-out
skips them. What a burner cannot hide: the home relay's address is the same
as the main identity's (see ``docs/rationale.md``).

Expiry is enforced: the node discards expired burners (keys gone from the
next stored copy) and using one answers ``burner_expired``. The rules (which
burners are live, expired, rate-limited) are :class:`dchat_identity.lowlevel.BurnerBook`'s;
this shell loads and stores its blobs under one lock and runs the expiry task.

Expiry holds the seed of a burner with a meta-address (``burner_held``) until
the stealth desk finds its accounts empty: never keys that may hold funds.

Each burner's card publishes the burner's own stealth meta-address (derived
from the burner's key like the identity's from its own); older cards are
re-issued with it the next time the book is opened. The node's stealth scan
checks every live burner's keys (:meth:`BurnerService.identities`).
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import trio

from dchat_chain.lowlevel import StealthKeys
from dchat_identity.lowlevel import BURNER_KEYS, BurnerBook, BurnerStateError, burner_row

from .._errors import NodeStateError
from ._guardian_state import commit

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from dchat_core import IdentityId, MessageId
    from dchat_identity import Identity
    from dchat_messaging.lowlevel import ContactEntry

    from ..config import NodeConfig
    from ._service import UserService

__all__ = ("BurnerService",)

_log = logging.getLogger("dchat.burners")
_T = TypeVar("_T")


class BurnerService:
    """This device's burners: create, list, use, discard, expire."""

    def __init__(self, user: UserService, config: NodeConfig) -> None:
        self._user = user
        self._config = config
        self._lock = trio.Lock()

    @asynccontextmanager
    async def _book(self) -> AsyncIterator[BurnerBook]:
        """The stored book, expired burners discarded; written back if it changed.

        Written back also when the block fails with a :class:`BurnerStateError`
        (a refused creation still spent the rate limit), then re-raised as the
        node's error with the same code.
        """
        async with self._lock:
            now = self._user.now()
            try:
                stored = {key: await self._user.state_get(key) for key in BURNER_KEYS}
                book = BurnerBook.from_blobs(stored, now=now)
                gone = book.expire(now=now, hold=True)  # seeds with stealth funds kept
                for burner_id in gone:
                    self._user.agent.remove_identity(burner_id)
                if gone:
                    _log.info("expired burners discarded", extra={"count": len(gone)})
                book.add_stealth(_meta_address)
                try:
                    yield book
                finally:
                    if book.changed:
                        await commit(self._user, book.blobs())
                    for held in book.newly_held:  # told once it is kept (committed)
                        await self._user.logged(self._user.agent.stealth.burner_held, held, now)
            except BurnerStateError as exc:
                raise NodeStateError(exc.code, str(exc)) from None

    async def load(self) -> None:
        """At start: discard expired burners and fetch mail for the live ones."""
        async with self._book() as book:
            for burner_id in book.ids():
                self._user.agent.add_identity(book.store.get(burner_id).identity)

    async def create(self, *, ttl: float, name: str | None) -> dict[str, Any]:
        """A new burner valid for ``ttl`` seconds; its card carries the expiry."""
        relays = [str(relay) for relay in self._user.home_relays]
        async with self._book() as book:
            burner, card = book.create(
                now=self._user.now(), ttl=ttl, name=name or "burner", relays=relays,
                stealth_of=_meta_address,
            )  # fmt: skip
        self._user.agent.add_identity(burner.identity)
        self._user.engines.for_identity(burner.identity, card)
        _log.info("burner created")
        await self._user.publish_prekeys_now(burner.identity)  # reachable at once
        return burner_row(burner, card)

    async def describe(self) -> list[dict[str, Any]]:
        """The live burners."""
        async with self._book() as book:
            return book.rows()

    async def identities(self) -> dict[IdentityId, Identity]:
        """The live burners' identities (whose stealth keys the node's scan checks)."""
        async with self._book() as book:
            return {i: book.store.get(i).identity for i in book.ids()}

    async def with_book(self, step: Callable[[BurnerBook], _T]) -> _T:
        """``step(book)`` under the lock (e.g. the held seeds); stored if it changed."""
        async with self._book() as book:
            return step(book)

    async def discard(self, burner_id: str) -> None:
        """Delete the burner's keys for good and stop fetching its mail."""
        async with self._book() as book:
            self._user.agent.remove_identity(book.discard(burner_id, now=self._user.now()))
        _log.info("burner discarded")

    async def add_contact(self, burner_id: str, name: str, card_text: str) -> ContactEntry:
        """Add a quiet contact to write to from ``burner_id`` (no document is sent)."""
        async with self._book() as book:
            book.live(burner_id, now=self._user.now())
        return await self._user.add_contact(name, card_text, announce=False)

    async def send(self, burner_id: str, to: str, text: str) -> MessageId:
        """Send ``text`` to the contact ``to`` as the burner."""
        async with self._book() as book:
            burner, card = book.live(burner_id, now=self._user.now())
        return await self._user.send(to, text, sender=burner.identity, sender_card=card)

    async def run_expiry(self, interval: float) -> None:
        """Discard expired burners every ``interval`` seconds, forever."""
        while True:
            await trio.sleep(interval)
            if self._user.has_identity:
                async with self._book():
                    pass


def _meta_address(identity: Identity) -> bytes:
    """A burner's own stealth meta-address (from its key, never the owner's)."""
    return StealthKeys.of_identity(identity).meta_address.to_bytes()
