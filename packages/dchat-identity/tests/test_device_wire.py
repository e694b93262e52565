"""Rendezvous and sync wire formats: strict decoders, forged and revoked senders refused."""

from __future__ import annotations

import contextlib
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dchat_crypto import PrivateKey, SigningKey
from dchat_identity import (
    DeviceCertificate,
    DeviceRevocation,
    DocumentChain,
    ForgedRecordError,
    Identity,
    IdentityDocument,
    MalformedRecordError,
    RevokedDeviceError,
)
from dchat_identity.lowlevel import (
    Rekey,
    ReplayedDocumentError,
    SyncItem,
    SyncKey,
    SyncReplica,
    decode_pair_item,
    decode_starter,
    decode_sync_item,
    encode_pair_item,
    encode_starter,
    encode_sync_item,
    open_ops,
    open_sync_item,
    rendezvous_keys,
    seal_sync_item,
    seal_sync_message,
    state_ops,
    sync_mailbox_key,
)
from dchat_testing import hostile_bytes

NOW = 1.8e9


@given(hostile_bytes(max_size=300))
def test_decoders_are_total(data: bytes) -> None:
    for decode in (decode_pair_item, decode_sync_item, decode_starter, Rekey.from_bytes):
        with contextlib.suppress(MalformedRecordError):  # the only error allowed
            decode(data)


@given(st.binary(min_size=1, max_size=64), st.binary(min_size=1, max_size=64))
def test_items_round_trip(m: bytes, other: bytes) -> None:
    item = decode_pair_item(encode_pair_item("keys", m=m, nonce=other))
    assert (item.kind, item.fields) == ("keys", {"m": m, "nonce": other})
    sync = SyncItem(document=m, ops=other)
    assert decode_sync_item(encode_sync_item(sync)) == sync
    assert decode_starter(encode_starter(m, other, 7)) == (m, other, 7)


def test_items_are_refused_when_kind_and_fields_disagree() -> None:
    with pytest.raises(ValueError, match="bad pairing item"):
        encode_pair_item("keys", m=b"x")  # no nonce
    with pytest.raises(MalformedRecordError):
        decode_pair_item(encode_pair_item("hello", m=b"x").replace(b"hello", b"hellx"))
    with pytest.raises(MalformedRecordError):
        decode_pair_item(
            encode_pair_item("abort", why="cancelled").replace(b"cancelled", b"cancelleX")
        )
    with pytest.raises(MalformedRecordError, match="empty"):
        decode_sync_item(encode_sync_item(SyncItem()))


def test_derivations_separate_directions_codes_and_devices() -> None:
    to_host, to_joiner = rendezvous_keys("abcde-fghij")
    assert rendezvous_keys("ABCDEFGHIJ")[0].public_key == to_host.public_key
    assert to_host.public_key != to_joiner.public_key
    assert rendezvous_keys("ABCDEFGHIK")[0].public_key != to_host.public_key
    dev1, dev2, secret = SigningKey.generate(), SigningKey.generate(), os.urandom(32)
    box1 = sync_mailbox_key(secret, dev1.public_key).public_key
    assert box1 != sync_mailbox_key(secret, dev2.public_key).public_key
    assert box1 != sync_mailbox_key(os.urandom(32), dev1.public_key).public_key


def _cert(identity: Identity, device: SigningKey, name: str) -> DeviceCertificate:
    return DeviceCertificate.issue(
        identity.signing_key,
        identity.identity_id,
        device.public_key,
        PrivateKey.generate().public_key,
        name=name,
        now=NOW,
    )


def test_sync_ops_from_revoked_unknown_or_forged_devices_are_refused() -> None:
    alice = Identity.generate()
    phone, laptop, stranger = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()
    genesis = IdentityDocument.genesis(
        alice.signing_key, alice.encryption_key.public_key, now=NOW,
        devices=(_cert(alice, phone, "phone"), _cert(alice, laptop, "laptop")),
    )  # fmt: skip
    chain = DocumentChain(genesis)
    old, new = SyncKey(os.urandom(32)), SyncKey(os.urandom(32), 1)
    replica = SyncReplica(laptop.public_key.to_bytes())
    ops = [replica.add("contacts", "dcid1abc", now=NOW)]

    def sealed(device: SigningKey, key: SyncKey) -> bytes:
        return seal_sync_message(ops, key=key, device_key=device, subject=alice.identity_id)

    assert open_ops(sealed(laptop, old), (old, new), chain) == ops  # the previous epoch still opens
    with pytest.raises(ForgedRecordError):
        open_ops(sealed(laptop, SyncKey(os.urandom(32))), (old, new), chain)
    with pytest.raises(RevokedDeviceError):
        open_ops(sealed(stranger, new), (old, new), chain)
    tampered = bytearray(sealed(laptop, new))
    tampered[-70] ^= 1
    with pytest.raises((ForgedRecordError, MalformedRecordError)):
        open_ops(bytes(tampered), (new,), chain)

    revocation = DeviceRevocation.issue(
        alice.signing_key, alice.identity_id, laptop.public_key, seq=2, now=NOW
    )
    successor = genesis.successor(
        alice.signing_key, now=NOW, devices=genesis.devices[:1], revoked=(revocation,)
    )
    chain.update(successor)
    with pytest.raises(RevokedDeviceError):
        open_ops(sealed(laptop, new), (new,), chain)
    with pytest.raises(ReplayedDocumentError):
        chain.update(successor.to_bytes())


def test_items_and_rekeys_are_bound_to_their_device() -> None:
    alice, mallory = Identity.generate(), Identity.generate()
    exchange, device = PrivateKey.generate(), SigningKey.generate()
    sealed = seal_sync_item(SyncItem(ops=b"x"), exchange.public_key)
    assert open_sync_item(sealed, exchange) == SyncItem(ops=b"x")
    with pytest.raises(ForgedRecordError):
        open_sync_item(sealed, PrivateKey.generate())
    rekey = Rekey.issue(alice.signing_key, alice.identity_id, device.public_key, 1, os.urandom(32))
    decoded = Rekey.from_bytes(rekey.to_bytes())
    decoded.verify(alice.signing_key.public_key, alice.identity_id, device.public_key)
    with pytest.raises(ForgedRecordError):
        decoded.verify(mallory.signing_key.public_key, alice.identity_id, device.public_key)
    with pytest.raises(ForgedRecordError):
        decoded.verify(
            alice.signing_key.public_key, alice.identity_id, SigningKey.generate().public_key
        )


def test_state_ops_rebuild_the_state() -> None:
    one = SyncReplica(b"one")
    one.add("contacts", "a", now=NOW)
    one.add("contacts", "b", now=NOW)
    one.remove("contacts", "a", now=NOW)
    one.set("settings/theme", "dark", now=NOW)
    two = SyncReplica(b"two")
    for op in state_ops(one.state):
        two.receive(op, now=NOW)
    assert two.state.to_bytes() == one.state.to_bytes()
    assert two.state.members("contacts") == frozenset({"b"})
