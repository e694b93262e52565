"""Identity documents and the chain verifier: stale, forked, forged, replayed, revoked."""

from __future__ import annotations

import dataclasses
import functools

import pytest

from dchat_core import canonical_encode
from dchat_crypto import PrivateKey, SigningKey
from dchat_identity import (
    DeviceCertificate,
    DeviceRevocation,
    DocumentChain,
    ExpiredError,
    ForgedRecordError,
    Identity,
    IdentityArgumentError,
    IdentityDocument,
    MalformedRecordError,
    RevokedDeviceError,
)
from dchat_identity.lowlevel import (
    BrokenChainError,
    ForkedDocumentError,
    ReplayedDocumentError,
    StaleDocumentError,
    verify_update,
)

from .conftest import SeededRng

NOW = 1_700_000_000.0
DOMAIN = b"test-msg\x00"


@functools.cache
def alice() -> Identity:
    return Identity.generate(SeededRng(b"alice"))


@functools.cache
def mallory() -> Identity:
    return Identity.generate(SeededRng(b"mallory"))


def device(n: int) -> SigningKey:
    return SigningKey.from_bytes(SeededRng(b"device%d" % n)(32))


def cert(n: int, identity: Identity | None = None) -> DeviceCertificate:
    identity = identity or alice()
    return DeviceCertificate.issue(
        identity.signing_key,
        alice().identity_id,
        device(n).public_key,
        PrivateKey.from_bytes(SeededRng(b"dh%d" % n)(32)).public_key,
        name=f"device {n}",
        now=NOW,
    )


def genesis(**contents) -> IdentityDocument:
    a = alice()
    return IdentityDocument.genesis(a.signing_key, a.encryption_key.public_key, now=NOW, **contents)


@functools.cache
def history() -> tuple[IdentityDocument, ...]:
    """v1 with device 1; v2 adds device 2; v3 revokes device 1."""
    a = alice()
    v1 = genesis(devices=(cert(1),))
    v2 = v1.successor(a.signing_key, now=NOW + 10, devices=(cert(1), cert(2)))
    revoke = DeviceRevocation.issue(
        a.signing_key, a.identity_id, device(1).public_key, seq=3, now=NOW + 20
    )
    v3 = v2.successor(a.signing_key, now=NOW + 20, devices=(cert(2),), revoked=(revoke,))
    return v1, v2, v3


def test_round_trip_and_hash_chain() -> None:
    v1, v2, v3 = history()
    for doc in (v1, v2, v3):
        assert IdentityDocument.from_bytes(doc.to_bytes()) == doc
    assert v1.prev == bytes(32)
    assert v2.prev == v1.document_hash
    assert v3.prev == v2.document_hash
    assert v1.subject == alice().identity_id == v3.subject
    verify_update(v1, v2)
    verify_update(v2, v3)


def test_chain_accepts_each_next_version() -> None:
    v1, v2, v3 = history()
    chain = DocumentChain(v1)
    chain.update(v2.to_bytes())
    chain.update(v3)
    assert chain.head == v3
    assert chain.version(2) == v2


def test_stale_document_is_rejected() -> None:
    v1, v2, v3 = history()
    with pytest.raises(StaleDocumentError):
        verify_update(v2, v1)
    chain = DocumentChain(v1)
    chain.update(v2)
    chain.update(v3)
    # An older version, signed by the right key but not the one accepted: stale.
    other_v1 = genesis(devices=(cert(5),))
    with pytest.raises((StaleDocumentError, ForkedDocumentError)):
        chain.update(other_v1)


def test_replayed_document_is_rejected() -> None:
    v1, v2, _ = history()
    chain = DocumentChain(v1)
    chain.update(v2)
    with pytest.raises(ReplayedDocumentError):
        chain.update(v2.to_bytes())
    with pytest.raises(ReplayedDocumentError):
        chain.update(v1)
    with pytest.raises(ReplayedDocumentError):
        verify_update(v2, v2)
    assert chain.head == v2


def test_forked_document_is_rejected() -> None:
    v1, v2, _ = history()
    fork = v1.successor(alice().signing_key, now=NOW + 11, prekeys=(bytes(32),))
    assert fork.prev == v2.prev
    assert fork != v2
    chain = DocumentChain(v1)
    chain.update(v2)
    with pytest.raises(ForkedDocumentError):
        chain.update(fork)
    assert chain.head == v2


def test_forged_document_is_rejected() -> None:
    v1, v2, _ = history()
    # Tampered after signing.
    tampered = dataclasses.replace(v2, prekeys=(bytes(32),))
    with pytest.raises(ForgedRecordError):
        IdentityDocument.from_bytes(tampered.to_bytes())
    chain = DocumentChain(v1)
    with pytest.raises(ForgedRecordError):
        chain.update(tampered.to_bytes())
    # Mallory signs a "next version" of Alice's identity with her own key.
    forged = dataclasses.replace(v2, identity_key=mallory().signing_key.public_key)
    forged = forged._signed(mallory().signing_key)
    with pytest.raises(ForgedRecordError):
        chain.update(forged)
    # A device certificate signed by Mallory inside a document Alice signed? Impossible
    # to build honestly; forge one and check the embedded signature is verified.
    bad_cert = dataclasses.replace(cert(3), signature=cert(3, mallory()).signature)
    doc = dataclasses.replace(v2, devices=(cert(1), bad_cert))._signed(alice().signing_key)
    with pytest.raises(ForgedRecordError):
        chain.update(doc)
    assert chain.head == v1


def test_every_flipped_byte_is_rejected() -> None:
    raw = history()[1].to_bytes()
    for position in range(0, len(raw), 3):
        tampered = bytearray(raw)
        tampered[position] ^= 0x04
        with pytest.raises((MalformedRecordError, ForgedRecordError)):
            IdentityDocument.from_bytes(bytes(tampered))


def test_gaps_wrong_prev_and_other_subjects_break_the_chain() -> None:
    v1, v2, v3 = history()
    with pytest.raises(BrokenChainError):
        verify_update(v1, v3)
    wrong_prev = dataclasses.replace(v2, prev=bytes(range(32)))._signed(alice().signing_key)
    with pytest.raises(BrokenChainError):
        verify_update(v1, wrong_prev)
    m = mallory()
    other = IdentityDocument.genesis(m.signing_key, m.encryption_key.public_key, now=NOW)
    with pytest.raises(BrokenChainError):
        DocumentChain(v1).update(other.successor(m.signing_key, now=NOW))


def test_withdrawn_revocation_breaks_the_chain() -> None:
    _, _, v3 = history()
    # v4 drops the revocation and re-adds device 1: a replay of the old device set.
    v4 = v3.successor(alice().signing_key, now=NOW + 30, devices=(cert(1), cert(2)), revoked=())
    with pytest.raises(BrokenChainError):
        verify_update(v3, v4)


def test_revoked_device_signature_is_rejected_after_the_revocation() -> None:
    v1, v2, v3 = history()
    chain = DocumentChain(v1)
    chain.update(v2)
    message = b"hello from device 1"
    signature = device(1).sign(DOMAIN + message)
    chain.verify_device_signature(
        device(1).public_key, message, signature, domain=DOMAIN
    )  # still fine at v2
    chain.update(v3)
    with pytest.raises(RevokedDeviceError):
        chain.verify_device_signature(device(1).public_key, message, signature, domain=DOMAIN)
    with pytest.raises(RevokedDeviceError):
        chain.check_device(device(1).public_key, version=3)
    # History is still history: at version 2 the device was active.
    chain.verify_device_signature(
        device(1).public_key, message, signature, domain=DOMAIN, version=2
    )
    assert chain.revoked_at(device(1).public_key) == 3
    # Device 2 is active; a bad signature from it is a forgery, not a revocation.
    with pytest.raises(ForgedRecordError):
        chain.verify_device_signature(device(2).public_key, message, signature, domain=DOMAIN)
    with pytest.raises(RevokedDeviceError):
        chain.check_device(device(9).public_key)


def test_expired_documents_are_rejected() -> None:
    v1 = genesis(expires=NOW + 100)
    DocumentChain(v1, now=NOW + 99)
    with pytest.raises(ExpiredError):
        DocumentChain(v1, now=NOW + 100)
    v2 = v1.successor(alice().signing_key, now=NOW + 1)
    chain = DocumentChain(v1)
    with pytest.raises(ExpiredError):
        chain.update(v2, now=NOW + 200)


def test_chain_persists_and_rechecks() -> None:
    v1, v2, v3 = history()
    chain = DocumentChain(v1)
    chain.update(v2)
    chain.update(v3)
    restored = DocumentChain.from_bytes(chain.to_bytes())
    assert restored.head == v3
    assert restored.to_bytes() == chain.to_bytes()
    # A stored chain with a version swapped out fails, it is not trusted blindly.
    fork = v1.successor(alice().signing_key, now=NOW + 11, prekeys=(bytes(32),))
    bad = canonical_encode({"v": 1, "docs": [v1.to_bytes(), fork.to_bytes(), v3.to_bytes()]})
    with pytest.raises(BrokenChainError):
        DocumentChain.from_bytes(bad)


def test_successor_refuses_a_foreign_key_and_bad_contents() -> None:
    v1 = history()[0]
    with pytest.raises(IdentityArgumentError):
        v1.successor(mallory().signing_key, now=NOW)
    with pytest.raises(IdentityArgumentError):
        v1.successor(alice().signing_key, now=NOW, seq=9)
    with pytest.raises(IdentityArgumentError):
        v1.successor(alice().signing_key, now=NOW, devices=(cert(1), cert(1)))
    with pytest.raises(IdentityArgumentError):
        v1.successor(alice().signing_key, now=NOW, prekeys=(b"short",))


def test_version_one_must_name_its_own_key() -> None:
    v1 = history()[0]
    lying = dataclasses.replace(v1, subject=mallory().identity_id)
    with pytest.raises(IdentityArgumentError):
        lying._signed(alice().signing_key)
