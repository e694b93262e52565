"""A device's own state and the device-list rules: certify, find, revoke, list."""

from __future__ import annotations

import pytest
from hypothesis import given

from dchat_crypto import PrivateKey, SigningKey
from dchat_identity import (
    DeviceCertificate,
    DocumentChain,
    Identity,
    IdentityDocument,
    MalformedRecordError,
)
from dchat_identity.lowlevel import (
    IdentityStateError,
    LocalDevice,
    SyncKey,
    device_rows,
    find_devices,
    plan_revocation,
)
from dchat_testing import hostile_bytes

from .conftest import SeededRng

NOW = 1.8e9


def _setup() -> tuple[Identity, LocalDevice, DocumentChain]:
    alice = Identity.generate()
    primary, own = LocalDevice.certify_primary(alice, now=NOW, rng=SeededRng())
    laptop = DeviceCertificate.issue(
        alice.signing_key, alice.identity_id, SigningKey.generate().public_key,
        PrivateKey.generate().public_key, name="laptop", now=NOW,
    )  # fmt: skip
    doc = IdentityDocument.genesis(
        alice.signing_key, alice.encryption_key.public_key, now=NOW, devices=(own, laptop)
    )
    return alice, primary, DocumentChain(doc)


def test_the_primary_certifies_its_own_identity_keys() -> None:
    alice, primary, chain = _setup()
    own = chain.head.devices[0]
    own.verify(alice.signing_key.public_key)
    assert own.device_key == alice.signing_key.public_key
    assert own.exchange_key == alice.encryption_key.public_key
    assert (primary.role, primary.linked, primary.sync_key.epoch) == ("primary", False, 0)
    assert "secret" not in repr(primary)
    assert repr(primary) == "LocalDevice(primary, 'primary')"


def test_the_state_round_trips_and_strict_decoding_refuses_the_rest() -> None:
    _, primary, chain = _setup()
    laptop = chain.head.devices[1]
    state = primary.with_facts(laptop.device_key, {"os": "linux"})
    assert LocalDevice.from_bytes(state.to_bytes()) == state
    assert state.facts == {laptop.device_key.to_bytes().hex(): {"os": "linux"}}
    with pytest.raises(MalformedRecordError):
        LocalDevice.from_bytes(state.to_bytes().replace(b"primary", b"primarx"))
    no_keys = LocalDevice("primary", primary.device_key, primary.exchange_key, "p", ())
    with pytest.raises(MalformedRecordError):
        LocalDevice.from_bytes(no_keys.to_bytes())


@given(hostile_bytes(max_size=300))
def test_decoding_any_bytes_is_total(data: bytes) -> None:
    with pytest.raises(MalformedRecordError):  # random bytes are never a device state
        LocalDevice.from_bytes(data)


def test_a_newer_sync_key_replaces_the_previous_one_an_older_is_ignored() -> None:
    _, primary, _ = _setup()
    one, two = SyncKey(b"1" * 32, 1), SyncKey(b"2" * 32, 2)
    moved = primary.with_sync_key(one).with_sync_key(two)
    assert moved.keys == (one, two)
    assert moved.with_sync_key(one) is moved
    assert moved.with_sync_key(SyncKey(b"3" * 32, 2)) is moved


def test_devices_are_found_by_name_or_a_long_enough_key_prefix() -> None:
    _, _, chain = _setup()
    devices = chain.head.devices
    laptop = devices[1]
    hexkey = laptop.device_key.to_bytes().hex()
    assert find_devices(devices, "laptop") == [laptop]
    assert find_devices(devices, hexkey[:8].upper() + " ") == [laptop]
    assert find_devices(devices, hexkey[:7]) == []
    assert find_devices(devices, "Laptop") == []
    twins = (laptop, laptop)
    assert len(find_devices(twins, "laptop")) == 2


def test_revoking_drops_the_device_adds_a_revocation_and_a_fresh_epoch() -> None:
    alice, primary, chain = _setup()
    laptop = chain.head.devices[1]
    plan = plan_revocation(alice.signing_key, chain, primary, laptop, now=NOW, rng=SeededRng())
    assert plan.devices == chain.head.devices[:1]
    (revocation,) = plan.revoked
    revocation.verify(alice.signing_key.public_key)
    assert (revocation.device_key, revocation.seq) == (laptop.device_key, 2)
    old, new = plan.local.keys
    assert (old, new.epoch) == (primary.sync_key, 1)
    assert new.secret != primary.sync_key.next_epoch().secret  # the revoked could derive that
    doc = chain.head.successor(
        alice.signing_key, now=NOW, devices=plan.devices, revoked=plan.revoked
    )
    chain.update(doc)
    rows = device_rows(chain, plan.local)
    assert [(r["name"], r["status"], r["this_device"]) for r in rows] == [
        ("primary", "active", True),
        (None, "revoked", False),
    ]
    assert rows[1]["revoked_in"] == 2


def test_the_primary_cannot_revoke_itself() -> None:
    alice, primary, chain = _setup()
    with pytest.raises(IdentityStateError, match="itself"):
        plan_revocation(alice.signing_key, chain, primary, chain.head.devices[0], now=NOW)


def test_a_listing_shows_attested_facts_and_marks_no_device_for_a_stranger() -> None:
    _, primary, chain = _setup()
    laptop = chain.head.devices[1]
    state = primary.with_facts(laptop.device_key, {"keystore": "software"})
    rows = device_rows(chain, state)
    assert rows[1]["attested"] == {"keystore": "software"}
    assert rows[0]["attested"] is None
    assert not any(r["this_device"] for r in device_rows(chain, None))
