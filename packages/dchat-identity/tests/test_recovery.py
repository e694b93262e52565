"""Guardian recovery: M-of-N, time lock, veto, forged approvals, contacts follow the new key."""

from __future__ import annotations

import dataclasses
import functools

import pytest
from hypothesis import given, settings

from dchat_core import canonical_decode, canonical_encode
from dchat_identity import (
    DeviceCertificate,
    DocumentChain,
    ExpiredError,
    ForgedRecordError,
    Guardian,
    GuardianSet,
    Identity,
    IdentityArgumentError,
    IdentityDocument,
    MalformedRecordError,
    RecoveryProcess,
    RecoveryRequest,
    RecoveryVeto,
    RevokedDeviceError,
    approve_recovery,
    setup_guardians,
)
from dchat_identity.lowlevel import (
    GuardianApproval,
    GuardianShare,
    InvalidShareError,
    NotEnoughApprovalsError,
    RecoveryCertificate,
    ShareRelease,
    TimeLockedError,
    VetoedError,
)
from dchat_testing import hostile_bytes

from .conftest import SeededRng

NOW = 1_700_000_000.0
LOCK, TTL = 3 * 86400.0, 30 * 86400.0


@functools.cache
def world():
    """Alice with a phone and 3-of-5 guardians, as her contacts know her."""
    alice = Identity.generate(SeededRng(b"alice"))
    guardians = [Identity.generate(SeededRng(b"guardian%d" % i)) for i in range(5)]
    gset, shares = setup_guardians(
        alice.identity_id,
        [Guardian(g.signing_key.public_key, g.encryption_key.public_key) for g in guardians],
        3,
        rng=SeededRng(b"secret"),
    )
    phone = Identity.generate(SeededRng(b"phone")).signing_key
    cert = DeviceCertificate.issue(
        alice.signing_key, alice.identity_id, phone.public_key,
        alice.encryption_key.public_key, name="phone", now=NOW,
    )  # fmt: skip
    v1 = IdentityDocument.genesis(alice.signing_key, alice.encryption_key.public_key, now=NOW)
    v2 = v1.successor(alice.signing_key, now=NOW + 1, devices=(cert,), guardians=gset.set_hash)
    return alice, guardians, gset, shares, phone, v1, v2


@functools.cache
def new_alice() -> Identity:
    return Identity.generate(SeededRng(b"alice-new"))


def start() -> tuple[RecoveryRequest, RecoveryProcess]:
    _, _, gset, shares, _, _, v2 = world()
    # The guardian hands over the set with its share; Alice's contacts give her v2.
    gset = GuardianShare.from_bytes(shares[0].to_bytes()).guardian_set
    request = RecoveryRequest.create(new_alice(), v2, gset, now=NOW + 100, lock=LOCK, ttl=TTL)
    request = RecoveryRequest.from_bytes(request.to_bytes())
    return request, RecoveryProcess(request, gset, v2)


def approve(process: RecoveryProcess, indices, at: float) -> None:
    _, guardians, _, shares, *_ = world()
    for i in indices:
        approval, release = approve_recovery(guardians[i], shares[i], process.request, now=at)
        process.add_approval(
            GuardianApproval.from_bytes(approval.to_bytes()),
            ShareRelease.from_bytes(release.to_bytes()),
            now=at,
        )


def test_three_of_five_recover_and_contacts_follow_the_new_key() -> None:
    alice, _, _, _, phone, v1, v2 = world()
    request, process = start()
    approve(process, [4, 0, 2], NOW + 200)
    done = NOW + 100 + LOCK
    _cert, v3 = process.complete(new_alice(), now=done)
    assert v3.identity_key == new_alice().signing_key.public_key
    assert v3.subject == alice.identity_id
    # A contact who knew v1 and v2 accepts v3 through the certificate.
    contact = DocumentChain(v1)
    contact.update(v2)
    contact.update(v3.to_bytes())
    assert contact.identity_key == new_alice().signing_key.public_key
    assert RecoveryCertificate.from_bytes(v3.recovery).request == request
    # ...and from now on rejects the old key and the lost phone.
    stale = v2.successor(alice.signing_key, now=done + 1)
    with pytest.raises(ForgedRecordError):  # a version 3 signed by the old key
        contact.update(stale)
    forged_v4 = dataclasses.replace(v3, identity_key=alice.signing_key.public_key, recovery=None)
    forged_v4 = forged_v4.successor(alice.signing_key, now=done + 2)
    with pytest.raises(ForgedRecordError):
        contact.update(forged_v4)
    with pytest.raises(RevokedDeviceError):
        contact.check_device(phone.public_key)
    assert contact.head == v3
    # The new key carries on normally.
    contact.update(v3.successor(new_alice().signing_key, now=done + 3))
    assert DocumentChain.from_bytes(contact.to_bytes()).head.seq == 4


def test_two_guardians_cannot_recover() -> None:
    _, process = start()
    approve(process, [1, 3], NOW + 200)
    with pytest.raises(NotEnoughApprovalsError):
        process.complete(new_alice(), now=NOW + 100 + LOCK)
    approve(process, [1], NOW + 300)  # the same guardian twice counts once
    assert process.approvals == 2
    with pytest.raises(NotEnoughApprovalsError):
        process.complete(new_alice(), now=NOW + 100 + LOCK)


def test_a_certificate_with_too_few_approvals_is_rejected_by_contacts() -> None:
    _, _, _, _, _, _, v2 = world()
    _, process = start()
    approve(process, [0, 1, 2], NOW + 200)
    cert, v3 = process.complete(new_alice(), now=NOW + 100 + LOCK)
    short = dataclasses.replace(cert, approvals=cert.approvals[:2])
    v3_short = dataclasses.replace(v3, recovery=short.to_bytes())._signed(new_alice().signing_key)
    with pytest.raises(ForgedRecordError):
        DocumentChain(v2).update(v3_short)
    doubled = dataclasses.replace(cert, approvals=(cert.approvals[0],) * 3)
    v3_doubled = dataclasses.replace(v3, recovery=doubled.to_bytes())._signed(
        new_alice().signing_key
    )
    with pytest.raises(ForgedRecordError):
        DocumentChain(v2).update(v3_doubled)


def test_a_veto_within_the_lock_stops_recovery() -> None:
    alice = world()[0]
    request, process = start()
    approve(process, [0, 1, 2], NOW + 200)
    veto = RecoveryVeto.sign(alice, request, now=NOW + 1000)
    process.add_veto(RecoveryVeto.from_bytes(veto.to_bytes()), now=NOW + 1000)
    assert process.vetoed
    with pytest.raises(VetoedError):
        process.complete(new_alice(), now=NOW + 100 + LOCK)
    with pytest.raises(VetoedError):
        approve(process, [3], NOW + 2000)
    # The veto survives persistence.
    with pytest.raises(VetoedError):
        RecoveryProcess.from_bytes(process.to_bytes()).complete(new_alice(), now=NOW + 2 * LOCK)


def test_a_veto_after_the_lock_or_by_another_key_is_refused() -> None:
    request, process = start()
    late = RecoveryVeto.sign(world()[0], request, now=NOW + 100 + LOCK)
    with pytest.raises(TimeLockedError):
        process.add_veto(late, now=NOW + 100 + LOCK)
    early_but_delivered_late = RecoveryVeto.sign(world()[0], request, now=NOW + 200)
    with pytest.raises(TimeLockedError):
        process.add_veto(early_but_delivered_late, now=NOW + 100 + LOCK)
    thief = RecoveryVeto.sign(new_alice(), request, now=NOW + 200)  # not the current key
    with pytest.raises(ForgedRecordError):
        process.add_veto(thief, now=NOW + 200)
    assert not process.vetoed


def test_completion_waits_for_the_lock_and_approvals_may_come_before_or_after_it() -> None:
    _, process = start()
    approve(process, [0, 1], NOW + 200)  # before the lock ends
    with pytest.raises(TimeLockedError):
        process.complete(new_alice(), now=NOW + 99 + LOCK)
    approve(process, [2], NOW + 100 + LOCK + 5)  # after the lock ends
    with pytest.raises(TimeLockedError):
        process.complete(new_alice(), now=NOW + 50)
    process.complete(new_alice(), now=NOW + 100 + LOCK + 10)


def test_expired_requests_are_refused() -> None:
    _, guardians, _, shares, *_ = world()
    request, process = start()
    with pytest.raises(ExpiredError):
        approve_recovery(guardians[0], shares[0], request, now=NOW + 100 + TTL)
    approve(process, [0, 1, 2], NOW + 200)
    with pytest.raises(ExpiredError):
        process.complete(new_alice(), now=NOW + 100 + TTL)


def test_a_forged_approval_is_rejected() -> None:
    _, guardians, _, shares, *_ = world()
    request, process = start()
    approval, release = approve_recovery(guardians[0], shares[0], request, now=NOW + 200)
    # Claims to be guardian 1 with guardian 0's signature.
    with pytest.raises(ForgedRecordError):
        process.add_approval(dataclasses.replace(approval, index=1), release, now=NOW + 200)
    # Signed by someone who is not a guardian at all.
    outsider = Identity.generate(SeededRng(b"outsider"))
    with pytest.raises(IdentityArgumentError):
        approve_recovery(outsider, shares[0], request, now=NOW + 200)
    bogus = dataclasses.replace(approval, signature=outsider.signing_key.sign(b"x" * 10))
    with pytest.raises(ForgedRecordError):
        process.add_approval(bogus, release, now=NOW + 200)
    # An approval of another request.
    other = RecoveryRequest.create(
        Identity.generate(SeededRng(b"other")), world()[6], world()[2], now=NOW, lock=1, ttl=TTL
    )
    theirs, rel = approve_recovery(guardians[2], shares[2], other, now=NOW + 200)
    with pytest.raises(ForgedRecordError):
        process.add_approval(theirs, rel, now=NOW + 200)
    # A release that does not belong to the approval.
    with pytest.raises(ForgedRecordError):
        process.add_approval(approval, dataclasses.replace(release, index=3), now=NOW + 200)
    assert process.approvals == 0


def test_wrong_shares_are_detected() -> None:
    _, guardians, _, shares, *_ = world()
    request, process = start()
    approve(process, [0, 1], NOW + 200)
    approval, _release = approve_recovery(guardians[2], shares[2], request, now=NOW + 200)
    swapped = ShareRelease(2, process_release(process, 0).sealed)  # guardian 0's box as #2
    process.add_approval(approval, swapped, now=NOW + 200)
    with pytest.raises(InvalidShareError):
        process.complete(new_alice(), now=NOW + 100 + LOCK)
    # A guardian cannot open someone else's share.
    with pytest.raises(InvalidShareError):
        shares[1].open(guardians[0])


def process_release(process: RecoveryProcess, index: int) -> ShareRelease:
    return process._approvals[index][1]


def test_guardian_shares_are_sealed() -> None:
    _, guardians, gset, shares, *_ = world()
    words = shares[0].open(guardians[0])
    assert len(words.split()) == 33
    for share in shares:
        assert words.encode() not in share.to_bytes()
        assert GuardianShare.from_bytes(share.to_bytes()) == share
    assert GuardianSet.from_bytes(gset.to_bytes()) == gset


def test_process_persists_and_reverifies() -> None:
    _, process = start()
    approve(process, [0, 1, 2], NOW + 200)
    restored = RecoveryProcess.from_bytes(process.to_bytes())
    assert restored.approvals == 3
    fields = canonical_decode(process.to_bytes())
    approval = canonical_decode(fields["approvals"][0][0])
    approval["i"] = (approval["i"] + 1) % 5
    fields["approvals"][0][0] = canonical_encode(approval)
    with pytest.raises(ForgedRecordError):
        RecoveryProcess.from_bytes(canonical_encode(fields))
    restored.complete(new_alice(), now=NOW + 100 + LOCK)


def test_setup_refuses_bad_guardian_sets() -> None:
    alice, guardians, *_ = world()
    g = [Guardian(x.signing_key.public_key, x.encryption_key.public_key) for x in guardians]
    for members, m in [(g[:1], 1), (g[:3], 4), ([g[0], g[0], g[1]], 2)]:
        with pytest.raises(IdentityArgumentError):
            setup_guardians(alice.identity_id, members, m)


@settings(max_examples=100)
@given(hostile_bytes(max_size=600))
def test_garbage_recovery_records_are_typed(data: bytes) -> None:
    for decoder in (
        RecoveryRequest.from_bytes,
        GuardianApproval.from_bytes,
        RecoveryVeto.from_bytes,
        ShareRelease.from_bytes,
        RecoveryCertificate.from_bytes,
        RecoveryProcess.from_bytes,
        GuardianSet.from_bytes,
        GuardianShare.from_bytes,
    ):
        with pytest.raises(MalformedRecordError):
            decoder(data)


def test_a_release_is_checked_on_arrival() -> None:
    _, guardians, _, shares, *_ = world()
    request, _ = start()
    _approval, release = approve_recovery(guardians[1], shares[1], request, now=NOW + 200)
    release.check(new_alice(), request)
    with pytest.raises(InvalidShareError):  # only the request's new key opens it
        release.check(Identity.generate(SeededRng(b"mallory")), request)
    with pytest.raises(InvalidShareError):  # moved to another position
        ShareRelease(2, release.sealed).check(new_alice(), request)
    with pytest.raises(InvalidShareError):  # tampered with
        ShareRelease(1, release.sealed[:-1] + bytes([release.sealed[-1] ^ 1])).check(
            new_alice(), request
        )
