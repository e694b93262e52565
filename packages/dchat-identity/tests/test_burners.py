"""Burner identities: unlinkable, expiring, rate-limited, discardable."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from dchat_core import IdentityId, MailboxId
from dchat_identity import (
    BurnerStore,
    ContactCard,
    DeviceCertificate,
    DocumentChain,
    ExpiredError,
    Identity,
    IdentityArgumentError,
    IdentityDocument,
    MalformedRecordError,
    RateLimitedError,
)
from dchat_identity.lowlevel import IdentitySeed, Purpose
from dchat_testing import hostile_bytes

from .conftest import SeededRng

NOW = 1_700_000_000.0
RELAY = "relay.example:7400"


def _main_public_material() -> list[bytes]:
    """Everything the main identity publishes, and keys derived from its seed."""
    seed = IdentitySeed(SeededRng(b"main-seed")(64))
    main = Identity.from_seed(seed)
    device = seed.signing_key(0, 1, Purpose.DEVICE)
    cert = DeviceCertificate.issue(
        main.signing_key, main.identity_id, device.public_key,
        seed.exchange_key(0, 1, Purpose.DEVICE_EXCHANGE).public_key, name="phone", now=NOW,
    )  # fmt: skip
    doc = IdentityDocument.genesis(
        main.signing_key, main.encryption_key.public_key, now=NOW, devices=(cert,)
    )
    card = ContactCard.issue(main, name="Main", relay=RELAY)
    material = [
        main.signing_key.public_key.to_bytes(),
        main.encryption_key.public_key.to_bytes(),
        main.mailbox_key.public_key.to_bytes(),
        bytes(main.identity_id),
        bytes(main.mailbox_id),
        device.public_key.to_bytes(),
        doc.document_hash,
        seed.sync_secret(),
    ]
    for account in range(3):  # keys the seed would give other accounts or devices
        other = Identity.from_seed(seed, account=account)
        material += [other.signing_key.public_key.to_bytes(), bytes(other.identity_id)]
        for dev in range(4):
            material.append(seed.signing_key(account, dev, Purpose.DEVICE).public_key.to_bytes())
    material += [card.signature, doc.signature, cert.signature]
    return material


def test_nothing_a_burner_publishes_links_to_the_main_identity() -> None:
    store = BurnerStore(now=NOW)
    burner = store.create(now=NOW, ttl=3600)
    published = burner.document.to_bytes() + burner.card(name="anon", relay=RELAY).to_bytes()
    for value in _main_public_material():
        # No 16-byte window of any main public value (or seed-derived key) appears.
        for start in range(0, len(value) - 15):
            assert value[start : start + 16] not in published
    assert burner.document.devices == ()
    assert burner.document.guardians == bytes(32)
    assert burner.identity_id == IdentityId.derive(burner.document.identity_key.to_bytes())


def test_two_burners_share_nothing() -> None:
    store = BurnerStore(now=NOW)
    a, b = store.create(now=NOW, ttl=60), store.create(now=NOW, ttl=60)
    assert a.identity_id != b.identity_id
    assert a.identity.mailbox_id != b.identity.mailbox_id
    assert a.identity.encryption_key != b.identity.encryption_key


def test_burners_expire_for_verifiers() -> None:
    burner = BurnerStore(now=NOW).create(now=NOW, ttl=3600)
    card = ContactCard.from_text(burner.card(name="anon", relay=RELAY).to_text())
    card.check_not_expired(NOW + 3599)
    with pytest.raises(ExpiredError):
        card.check_not_expired(NOW + 3600)
    DocumentChain(burner.document, now=NOW + 3599)
    with pytest.raises(ExpiredError):
        DocumentChain(burner.document, now=NOW + 3600)
    # The expiry is signed: removing it breaks the card's signature.
    from dataclasses import replace

    from dchat_identity import InvalidCardError

    with pytest.raises(InvalidCardError):
        ContactCard.from_bytes(replace(card, expires_ms=None).to_bytes())


def test_creation_is_rate_limited_per_device() -> None:
    store = BurnerStore(now=NOW, capacity=2, per_hour=1)
    store.create(now=NOW, ttl=60)
    store.create(now=NOW, ttl=60)
    with pytest.raises(RateLimitedError) as info:
        store.create(now=NOW + 1, ttl=60)
    assert 3500 < info.value.retry_after <= 3600
    store.create(now=NOW + 3600, ttl=60)  # one token refilled
    with pytest.raises(RateLimitedError):
        store.create(now=NOW + 3601, ttl=60)
    # Another device has its own bucket.
    BurnerStore(now=NOW).create(now=NOW, ttl=60)


def test_a_clock_moved_back_does_not_refill_the_bucket() -> None:
    store = BurnerStore(now=NOW, capacity=1, per_hour=1)
    store.create(now=NOW, ttl=60)
    with pytest.raises(RateLimitedError):
        store.create(now=NOW - 10_000, ttl=60)


def test_discarding_deletes_the_keys() -> None:
    store = BurnerStore(now=NOW)
    keep, drop = store.create(now=NOW, ttl=60), store.create(now=NOW, ttl=60)
    before = store.to_bytes()
    assert drop.identity.signing_key.to_bytes() in before
    store.discard(drop.identity_id)
    after = store.to_bytes()
    for secret in (
        drop.identity.signing_key.to_bytes(),
        drop.identity.encryption_key.to_bytes(),
        drop.identity.mailbox_key.to_bytes(),
    ):
        assert secret not in after
    assert keep.identity.signing_key.to_bytes() in after
    restored = BurnerStore.from_bytes(after)
    assert len(restored) == 1
    assert restored.get(keep.identity_id).document == keep.document
    with pytest.raises(IdentityArgumentError):
        restored.get(drop.identity_id)
    with pytest.raises(IdentityArgumentError):
        store.discard(drop.identity_id)


def test_expired_burners_can_be_swept() -> None:
    store = BurnerStore(now=NOW)
    short, long = store.create(now=NOW, ttl=60), store.create(now=NOW, ttl=6000)
    assert store.discard_expired(now=NOW + 60) == [short.identity_id]
    assert store.get(long.identity_id) is not None
    assert len(store) == 1


def test_rate_limit_survives_persistence() -> None:
    store = BurnerStore(now=NOW, capacity=1, per_hour=1)
    store.create(now=NOW, ttl=60)
    with pytest.raises(RateLimitedError):
        BurnerStore.from_bytes(store.to_bytes()).create(now=NOW + 1, ttl=60)


def test_repr_hides_keys() -> None:
    burner = BurnerStore(now=NOW).create(now=NOW, ttl=60)
    assert burner.identity.signing_key.to_bytes().hex() not in repr(burner)
    assert isinstance(burner.identity.mailbox_id, MailboxId)


@settings(max_examples=200)
@given(hostile_bytes(max_size=500))
def test_garbage_stores_are_typed_errors(data: bytes) -> None:
    with pytest.raises(MalformedRecordError):
        BurnerStore.from_bytes(data)
