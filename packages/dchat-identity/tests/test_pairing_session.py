"""The pairing session agent: two sessions exchange items in memory, as over a relay."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_identity import ContactCard, Identity, IdentityDocument, RevokedDeviceError
from dchat_identity.lowlevel import (
    DeviceAttestation,
    IdentityStateError,
    LocalDevice,
    PairingOutput,
    PairingSession,
    decode_pair_item,
    encode_pair_item,
)

from .conftest import SeededRng

NOW = 1.8e9
SECRET = bytes(range(32))
FACTS = {"os": "linux", "keystore": "software"}
RELAY = "relay.example:7000"


def _sessions(
    ttl: float = 60.0, code: str | None = None
) -> tuple[Identity, PairingSession, PairingSession]:
    alice = Identity.generate(rng=SeededRng(b"alice"))
    host = PairingSession.host(
        alice.signing_key, alice.identity_id, sync_secret=SECRET, now=NOW, ttl=ttl,
        rng=SeededRng(b"host"),
    )  # fmt: skip
    joiner = PairingSession.join(
        code or host.code, device_name="laptop", facts=FACTS, now=NOW, timeout=60,
        rng=SeededRng(b"joiner"),
    )  # fmt: skip
    return alice, host, joiner


def _one(out: PairingOutput) -> bytes:
    assert len(out.send) == 1
    return out.send[0]


def _to_sas(host: PairingSession, joiner: PairingSession) -> None:
    keys = host.receive(_one(joiner.hello()), now=NOW)
    reveal = joiner.receive(_one(keys), now=NOW)
    assert host.receive(_one(reveal), now=NOW) == PairingOutput()


def _welcome(alice: Identity, host: PairingSession) -> tuple[bytes, IdentityDocument]:
    certify = host.confirm(now=NOW).certify
    assert certify is not None
    doc = IdentityDocument.genesis(
        alice.signing_key, alice.encryption_key.public_key, now=NOW,
        devices=(certify.certificate,),
    )  # fmt: skip
    card = ContactCard.issue(alice, name="alice", relay=RELAY)
    return _one(host.welcome(card.to_bytes(), doc.to_bytes(), 3)), doc


def test_a_device_joins_after_both_sides_confirm_the_same_sas() -> None:
    alice, host, joiner = _sessions()
    assert host.inbox.public_key == joiner.outbox.public_key
    assert joiner.inbox.public_key == host.outbox.public_key
    _to_sas(host, joiner)
    assert host.state == joiner.state == "sas"
    assert host.sas == joiner.sas
    assert host.view()["sas"] == joiner.view()["sas"]
    assert joiner.confirm(now=NOW) == PairingOutput()  # the welcome is not there yet
    assert joiner.state == "confirmed"

    certify = host.confirm(now=NOW).certify
    assert certify is not None
    assert (certify.certificate.name, certify.facts) == ("laptop", FACTS)
    doc = IdentityDocument.genesis(
        alice.signing_key, alice.encryption_key.public_key, now=NOW,
        devices=(certify.certificate,),
    )  # fmt: skip
    card = ContactCard.issue(alice, name="alice", relay=RELAY)
    welcome = host.welcome(card.to_bytes(), doc.to_bytes(), 3)
    assert (host.state, host.device, host.finished) == ("done", "laptop", True)

    joined = joiner.receive(_one(welcome), now=NOW).joined
    assert joined is not None
    assert (joined.sync_secret, joined.epoch, joined.card, joined.document) == (
        SECRET, 3, card, doc
    )  # fmt: skip
    local, chain = LocalDevice.adopt(joined, now=NOW)
    assert (local.linked, local.name, local.sync_key.epoch) == (True, "laptop", 3)
    assert chain.head == doc
    joiner.joined()
    assert joiner.state == "done"
    assert joiner.receive(_one(welcome), now=NOW) == PairingOutput()  # finished: ignored


def test_the_welcome_may_arrive_before_the_joiner_confirms() -> None:
    alice, host, joiner = _sessions()
    _to_sas(host, joiner)
    welcome, _ = _welcome(alice, host)
    assert joiner.receive(welcome, now=NOW) == PairingOutput()
    assert joiner.state == "sas"
    assert joiner.confirm(now=NOW).joined is not None


def test_a_wrong_code_fails_the_mac_and_both_sides_stop() -> None:
    _, host, joiner = _sessions(code="AAAAA-BBBBB")
    keys = host.receive(_one(joiner.hello()), now=NOW)
    reveal = joiner.receive(_one(keys), now=NOW)  # the joiner cannot tell yet
    abort = host.receive(_one(reveal), now=NOW)
    assert host.error is not None
    assert host.error[0] == "authentication_failed"
    assert decode_pair_item(_one(abort)).fields == {"why": "failed"}
    assert joiner.receive(_one(abort), now=NOW) == PairingOutput()
    assert joiner.error is not None
    assert joiner.error[0] == "pairing_aborted"


def test_a_replayed_hello_is_refused_the_code_is_single_use() -> None:
    _, host, joiner = _sessions()
    hello = _one(joiner.hello())
    host.receive(hello, now=NOW)
    out = host.receive(hello, now=NOW)
    assert host.error is not None
    assert host.error[0] == "pairing_code"
    assert decode_pair_item(_one(out)).kind == "abort"


def test_an_expired_code_is_refused_and_an_idle_session_expires() -> None:
    _, host, joiner = _sessions(ttl=5)
    host.receive(_one(joiner.hello()), now=NOW + 6)
    assert host.error is not None
    assert host.error[0] == "pairing_code"

    _, host, joiner = _sessions(ttl=5)
    host.expire(now=NOW + 4)
    assert host.state == "waiting"
    host.expire(now=NOW + 5)
    assert host.error is not None
    assert host.error[0] == "pairing_expired"
    with pytest.raises(IdentityStateError, match="failed"):
        host.confirm(now=NOW + 5)


def test_confirming_after_the_deadline_expires_instead() -> None:
    _, host, joiner = _sessions(ttl=5)
    _to_sas(host, joiner)
    with pytest.raises(IdentityStateError):
        host.confirm(now=NOW + 5)
    assert host.error is not None
    assert host.error[0] == "pairing_expired"


@pytest.mark.parametrize("kind", ["reveal", "welcome"])
def test_items_out_of_order_fail_the_session(kind: str) -> None:
    alice, host, joiner = _sessions()
    _to_sas(host, joiner)
    if kind == "reveal":  # a second reveal at the host
        out = host.receive(encode_pair_item("reveal", m=b"x", att=b"y"), now=NOW)
        session = host
    else:  # a welcome at a joiner that has not seen the keys yet
        fresh = _sessions()[2]
        fresh.hello()
        out = fresh.receive(_welcome(alice, host)[0], now=NOW)
        session = fresh
    assert session.error is not None
    assert session.error[0] == "pairing_code"
    assert decode_pair_item(_one(out)).fields == {"why": "failed"}


def test_confirming_before_the_sas_is_a_state_error() -> None:
    _, host, joiner = _sessions()
    with pytest.raises(IdentityStateError, match="waiting"):
        joiner.confirm(now=NOW)
    with pytest.raises(IdentityStateError):
        host.welcome(b"", b"", 0)
    with pytest.raises(IdentityStateError):
        host.hello()


def test_an_abort_ends_both_sides() -> None:
    _, host, joiner = _sessions()
    _to_sas(host, joiner)
    abort = joiner.abort("sas_mismatch")
    assert joiner.error == ("pairing_aborted", "aborted on this device (sas_mismatch)")
    host.receive(_one(abort), now=NOW)
    assert host.error == ("pairing_aborted", "the other device aborted (sas_mismatch)")
    with pytest.raises(IdentityStateError):
        host.confirm(now=NOW)
    assert joiner.abort() == PairingOutput()  # already over: nothing more to say


def test_an_attestation_by_another_key_is_refused_at_confirmation() -> None:
    _, host, joiner = _sessions()
    keys = host.receive(_one(joiner.hello()), now=NOW)
    reveal = decode_pair_item(_one(joiner.receive(_one(keys), now=NOW)))
    nonce = decode_pair_item(_one(keys)).fields["nonce"]
    genuine = DeviceAttestation.from_bytes(reveal.fields["att"])
    other = Identity.generate().signing_key
    forged = DeviceAttestation.create(other, genuine.subject, FACTS, nonce=nonce, now=NOW)
    host.receive(encode_pair_item("reveal", m=reveal.fields["m"], att=forged.to_bytes()), now=NOW)
    assert host.state == "sas"  # fresh and signed, but for a key it is not certifying
    assert host.confirm(now=NOW) == PairingOutput()
    assert host.error is not None
    assert host.error[0] == "authentication_failed"


@pytest.mark.parametrize("late", [False, True])
def test_an_attestation_for_another_challenge_or_too_old_is_refused(late: bool) -> None:
    _, host, joiner = _sessions()
    keys = decode_pair_item(_one(host.receive(_one(joiner.hello()), now=NOW)))
    if late:  # the joiner's clock is 400 s behind: its answer looks stale
        reveal = joiner.receive(encode_pair_item("keys", **keys.fields), now=NOW - 400)
    else:  # someone swapped the challenge on the way
        swapped = encode_pair_item("keys", m=keys.fields["m"], nonce=bytes(32))
        reveal = joiner.receive(swapped, now=NOW)
    out = host.receive(_one(reveal), now=NOW)
    assert host.error is not None
    assert host.error[0] == ("expired" if late else "authentication_failed")
    assert decode_pair_item(_one(out)).kind == "abort"


def test_a_tampered_starter_kit_is_refused() -> None:
    alice, host, joiner = _sessions()
    _to_sas(host, joiner)
    joiner.confirm(now=NOW)
    welcome = decode_pair_item(_welcome(alice, host)[0])
    kit = bytearray(welcome.fields["kit"])
    kit[-1] ^= 1
    out = joiner.receive(
        encode_pair_item("welcome", m=welcome.fields["m"], kit=bytes(kit)), now=NOW
    )
    assert out.joined is None
    assert joiner.error is not None
    assert joiner.error[0] == "authentication_failed"


def test_a_document_without_the_new_device_is_not_adopted() -> None:
    alice, host, joiner = _sessions()
    _to_sas(host, joiner)
    joiner.confirm(now=NOW)
    host.confirm(now=NOW)
    doc = IdentityDocument.genesis(alice.signing_key, alice.encryption_key.public_key, now=NOW)
    card = ContactCard.issue(alice, name="alice", relay=RELAY)
    welcome = host.welcome(card.to_bytes(), doc.to_bytes(), 0)
    joined = joiner.receive(_one(welcome), now=NOW).joined
    assert joined is not None
    with pytest.raises(RevokedDeviceError):
        LocalDevice.adopt(joined, now=NOW)
    joiner.fail(RevokedDeviceError("not listed"))
    assert joiner.error == ("revoked_device", "not listed")
    joiner.fail(RevokedDeviceError("again"), code="other")
    assert joiner.error == ("revoked_device", "not listed")  # the first failure stands

    _, host, _ = _sessions()
    host.fail(RevokedDeviceError("mine"), code="identity_exists")
    assert host.error == ("identity_exists", "mine")


@settings(max_examples=150)
@given(data=st.binary(max_size=400), at_host=st.booleans())
def test_any_bytes_fail_the_session_with_a_code_never_an_exception(
    data: bytes, at_host: bool
) -> None:
    _, host, joiner = _sessions()
    joiner.hello()
    session = host if at_host else joiner
    out = session.receive(data, now=NOW)
    assert session.state == "failed"
    assert session.error is not None
    assert session.error[0] in {"malformed", "pairing_code", "pairing_aborted"}
    assert out.send in ((), (encode_pair_item("abort", why="failed"),))


@settings(max_examples=100)
@given(m=st.binary(max_size=200), nonce=st.binary(max_size=80))
def test_well_formed_items_with_garbage_inside_fail_with_a_typed_code(
    m: bytes, nonce: bytes
) -> None:
    _, host, joiner = _sessions()
    joiner.hello()
    joiner.receive(encode_pair_item("keys", m=m, nonce=nonce), now=NOW)
    host.receive(encode_pair_item("hello", m=m), now=NOW)
    for session in (host, joiner):
        assert session.error is not None
        assert session.error[0] in {"malformed", "authentication_failed", "pairing_code"}
