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
next stored copy) and using one raises :class:`BurnerExpiredError`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

import trio

from dchat_core import IdentityId, MessageId, NodeId
from dchat_identity import BurnerStore, ContactCard, IdentityArgumentError, RateLimitedError

from .._errors import NodeStateError
from ._guardian_state import load_map, store_map

if TYPE_CHECKING:
    from dchat_identity import Burner
    from dchat_storage import ContactRecord

    from ..config import NodeConfig
    from ._service import UserService

__all__ = ("BurnerExpiredError", "BurnerService")

_log = logging.getLogger("dchat.burners")
_STORE: Final = "burners.store"
_CARDS: Final = "burners.cards"  # burner id -> [card]
_EXPIRED: Final = "burners.expired"  # burner id -> [expiry ms]; public ids only
_MAX_EXPIRED: Final = 256


class BurnerExpiredError(NodeStateError):
    """The burner has expired; it was (or is now) discarded."""

    def __init__(self, message: str = "this burner has expired and was discarded") -> None:
        super().__init__("burner_expired", message)


class BurnerService:
    """This device's burners: create, list, use, discard, expire."""

    def __init__(self, user: UserService, config: NodeConfig) -> None:
        self._user = user
        self._config = config
        self._lock = trio.Lock()

    async def _load_store(self) -> BurnerStore:
        stored = await self._user.state_get(_STORE)
        if stored is None:
            return BurnerStore(now=self._user.now())
        return BurnerStore.from_bytes(stored)

    async def load(self) -> None:
        """At start: discard expired burners and fetch mail for the live ones."""
        async with self._lock:
            store = await self._expire(await self._load_store())
            for burner_id in await self._ids():
                self._user.add_identity(store.get(burner_id).identity)

    async def _ids(self) -> list[IdentityId]:
        return [IdentityId(raw) for raw in await load_map(self._user, _CARDS)]

    async def _expire(self, store: BurnerStore) -> BurnerStore:
        gone = store.discard_expired(now=self._user.now())
        if gone:
            await self._forget(store, gone, expired=True)
            _log.info("expired burners discarded", extra={"count": len(gone)})
        return store

    async def _forget(
        self, store: BurnerStore, gone: list[IdentityId], *, expired: bool = False
    ) -> None:
        cards = await load_map(self._user, _CARDS)
        ended = await load_map(self._user, _EXPIRED)
        for burner_id in gone:
            self._user.remove_identity(burner_id)
            if cards.pop(bytes(burner_id), None) is not None and expired:
                ended[bytes(burner_id)] = [int(self._user.now() * 1000)]
        while len(ended) > _MAX_EXPIRED:
            ended.pop(next(iter(ended)))
        # The store goes first: the keys must be gone even if a later write fails.
        await self._user.state_put(_STORE, store.to_bytes())
        await store_map(self._user, _CARDS, cards)
        await store_map(self._user, _EXPIRED, ended)

    async def create(self, *, ttl: float, name: str | None) -> dict[str, Any]:
        """A new burner valid for ``ttl`` seconds; its card carries the expiry."""
        relay = self._config.relay
        if relay is None:
            raise NodeStateError("no_relay", "configure a home relay (--relay) first")
        relay_node = NodeId.parse(self._config.relay_node) if self._config.relay_node else None
        async with self._lock:
            store = await self._expire(await self._load_store())
            try:
                burner = store.create(now=self._user.now(), ttl=ttl)
            except RateLimitedError as exc:
                await self._user.state_put(_STORE, store.to_bytes())
                raise NodeStateError(
                    "rate_limited", f"too many burners; retry in {exc.retry_after:.0f} s"
                ) from None
            card = burner.card(name=name or "burner", relay=relay, relay_node=relay_node)
            cards = await load_map(self._user, _CARDS)
            cards[bytes(burner.identity_id)] = [card.to_bytes()]
            await self._user.state_put(_STORE, store.to_bytes())
            await store_map(self._user, _CARDS, cards)
            self._user.add_identity(burner.identity)
            self._user.engine_for(burner.identity, card)
        _log.info("burner created")
        await self._user.publish_prekeys_now(burner.identity)  # reachable at once
        return _burner_json(burner, card)

    async def describe(self) -> list[dict[str, Any]]:
        """The live burners."""
        async with self._lock:
            store = await self._expire(await self._load_store())
            cards = await load_map(self._user, _CARDS)
            rows = []
            for raw, entry in cards.items():
                card = ContactCard.from_bytes(_first(entry))
                rows.append(_burner_json(store.get(IdentityId(raw)), card))
            return rows

    async def discard(self, burner_id: str) -> None:
        """Delete the burner's keys for good and stop fetching its mail."""
        target = self._parse(burner_id)
        async with self._lock:
            store = await self._load_store()
            await self._live(store, target)
            store.discard(target)
            await self._forget(store, [target])
        _log.info("burner discarded")

    def _parse(self, burner_id: str) -> IdentityId:
        try:
            return IdentityId.parse(burner_id)
        except ValueError:
            raise NodeStateError("not_found", "no such burner") from None

    async def _live(self, store: BurnerStore, burner_id: IdentityId) -> tuple[Burner, ContactCard]:
        """The burner and its card, or the typed error: expired, or unknown."""
        await self._expire(store)
        if bytes(burner_id) in await load_map(self._user, _EXPIRED):
            raise BurnerExpiredError
        try:
            burner = store.get(burner_id)
        except IdentityArgumentError:
            raise NodeStateError("not_found", "no such burner") from None
        entry = (await load_map(self._user, _CARDS))[bytes(burner_id)]
        return burner, ContactCard.from_bytes(_first(entry))

    async def add_contact(self, burner_id: str, name: str, card_text: str) -> ContactRecord:
        """Add a quiet contact to write to from ``burner_id`` (no document is sent)."""
        target = self._parse(burner_id)
        async with self._lock:
            await self._live(await self._load_store(), target)
        return await self._user.add_contact(name, card_text, announce=False)

    async def send(self, burner_id: str, to: str, text: str) -> MessageId:
        """Send ``text`` to the contact ``to`` as the burner."""
        target = self._parse(burner_id)
        async with self._lock:
            burner, card = await self._live(await self._load_store(), target)
        return await self._user.send(to, text, sender=burner.identity, sender_card=card)

    async def run_expiry(self, interval: float) -> None:
        """Discard expired burners every ``interval`` seconds, forever."""
        while True:
            await trio.sleep(interval)
            if self._user.has_identity:
                async with self._lock:
                    await self._expire(await self._load_store())


def _first(entry: list[bytes | str | int]) -> bytes:
    value = entry[0] if entry else None
    if not isinstance(value, bytes):
        raise NodeStateError("corrupt_state", "a stored burner card is malformed")
    return value


def _burner_json(burner: Burner, card: ContactCard) -> dict[str, Any]:
    return {
        "burner_id": str(burner.identity_id),
        "name": card.name,
        "expires": burner.expires_ms / 1000,
        "card": card.to_text(),
    }
