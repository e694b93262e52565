"""Device pairing: codes, QR payloads, SAS, and a man in the middle who gets caught."""

from __future__ import annotations

import functools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_core import canonical_decode, canonical_encode
from dchat_identity import (
    DocumentChain,
    ExpiredError,
    ForgedRecordError,
    Identity,
    IdentityDocument,
    MalformedRecordError,
    PairingCodeError,
    PairingHost,
    PairingJoiner,
    RevokedDeviceError,
)
from dchat_identity.lowlevel import DeviceAttestation, IdentityStateError
from dchat_testing import hostile_bytes

from .conftest import SeededRng

NOW = 1_700_000_000.0
SYNC = bytes(range(32))


@functools.cache
def alice() -> Identity:
    return Identity.generate(SeededRng(b"alice"))


def host(rng: bytes = b"host", **kwargs) -> PairingHost:
    a = alice()
    return PairingHost(
        a.signing_key, a.identity_id, now=NOW, sync_secret=SYNC, rng=SeededRng(rng), **kwargs
    )


def run(h: PairingHost, j: PairingJoiner) -> None:
    """Messages 1-3, up to both sides showing the SAS."""
    m2 = h.receive_hello(j.hello(), now=NOW + 1)
    m3 = j.receive_keys(m2)
    h.receive_reveal(m3, now=NOW + 2)


def test_pairing_with_a_code_links_a_device() -> None:
    h = host()
    j = PairingJoiner(h.code.lower(), device_name="laptop", rng=SeededRng(b"j"))
    run(h, j)
    assert h.sas == j.sas
    assert len(h.sas) == 6
    assert h.sas.isdigit()
    welcome = h.confirm(now=NOW + 3)
    j.confirm()
    paired = j.receive_welcome(welcome)
    assert paired.sync_secret == SYNC
    assert paired.certificate == h.certificate
    assert paired.certificate.device_key == j.device_key.public_key
    paired.certificate.verify(alice().signing_key.public_key)
    # The host adds the certificate to the next document; peers then accept the device.
    a = alice()
    v1 = IdentityDocument.genesis(a.signing_key, a.encryption_key.public_key, now=NOW)
    chain = DocumentChain(v1)
    with pytest.raises(RevokedDeviceError):
        chain.check_device(paired.device_key.public_key)
    chain.update(v1.successor(a.signing_key, now=NOW + 4, devices=(paired.certificate,)))
    assert chain.check_device(paired.device_key.public_key) == paired.certificate
    assert "laptop" in repr(paired)
    assert SYNC.hex() not in repr(paired)


def test_pairing_with_a_qr_payload_pins_the_identity_key() -> None:
    h = host()
    payload = h.qr_payload()
    assert payload.startswith("dchat-pair:")
    assert payload.isascii()
    j = PairingJoiner.from_qr(payload, device_name="phone", now=NOW, rng=SeededRng(b"q"))
    run(h, j)
    j.confirm()
    assert j.receive_welcome(h.confirm(now=NOW)).certificate.name == "phone"


def test_qr_pins_refuse_another_host_key() -> None:
    h = host()
    impostor = PairingHost(
        Identity.generate(SeededRng(b"eve")).signing_key,
        alice().identity_id,
        now=NOW,
        rng=SeededRng(b"eve-host"),
    )
    j = PairingJoiner.from_qr(h.qr_payload(), device_name="phone", now=NOW)
    m2 = impostor.receive_hello(j.hello(), now=NOW)
    with pytest.raises(ForgedRecordError):
        j.receive_keys(m2)


def test_expired_qr_payload_is_refused() -> None:
    payload = host(ttl=60).qr_payload()
    with pytest.raises(PairingCodeError):
        PairingJoiner.from_qr(payload, device_name="phone", now=NOW + 60)


class Mitm:
    """Eve relays both directions, substituting her own keys on each side."""

    def __init__(self, code: str) -> None:
        # Towards the host she plays a joiner; towards the joiner, a host.
        eve = Identity.generate(SeededRng(b"eve"))
        self.fake_joiner = PairingJoiner(code, device_name="laptop", rng=SeededRng(b"eve-j"))
        self.fake_host = PairingHost(
            eve.signing_key, alice().identity_id, now=NOW, rng=SeededRng(b"eve-h")
        )
        self.fake_host._code = self.fake_joiner._code  # she read the code off the screen


def test_a_man_in_the_middle_changes_the_sas() -> None:
    h = host()
    j = PairingJoiner(h.code, device_name="laptop", rng=SeededRng(b"j"))
    eve = Mitm(h.code)
    # joiner -> eve(as host) ; eve(as joiner) -> host
    m2_to_joiner = eve.fake_host.receive_hello(j.hello(), now=NOW)
    m2_to_eve = h.receive_hello(eve.fake_joiner.hello(), now=NOW)
    m3_to_eve = j.receive_keys(m2_to_joiner)
    eve.fake_host.receive_reveal(m3_to_eve, now=NOW)
    h.receive_reveal(eve.fake_joiner.receive_keys(m2_to_eve), now=NOW)
    # Each leg is internally consistent, but the two screens disagree.
    assert eve.fake_host.sas == j.sas
    assert h.sas == eve.fake_joiner.sas
    assert h.sas != j.sas
    h.abort()
    with pytest.raises(IdentityStateError):
        h.confirm(now=NOW)


def test_swapping_only_the_host_key_is_caught() -> None:
    h = host()
    j = PairingJoiner(h.code, device_name="laptop", rng=SeededRng(b"j"))
    m2 = h.receive_hello(j.hello(), now=NOW)
    fields = canonical_decode(m2)
    fields["eph"] = Identity.generate(SeededRng(b"x")).encryption_key.public_key.to_bytes()
    m3 = j.receive_keys(canonical_encode(fields))
    with pytest.raises(ForgedRecordError):  # the transcripts differ, so the MAC fails
        h.receive_reveal(m3, now=NOW)


def test_reveal_must_match_the_commitment() -> None:
    h = host()
    j = PairingJoiner(h.code, device_name="laptop", rng=SeededRng(b"j"))
    other = PairingJoiner(h.code, device_name="laptop", rng=SeededRng(b"k"))
    m2 = h.receive_hello(j.hello(), now=NOW)
    other.hello()
    with pytest.raises(ForgedRecordError):
        h.receive_reveal(other.receive_keys(m2), now=NOW)


def test_wrong_code_fails_opaquely() -> None:
    h = host()
    wrong = "AAAAA-AAAAA" if h.code != "AAAAA-AAAAA" else "BBBBB-BBBBB"
    j = PairingJoiner(wrong, device_name="laptop")
    m2 = h.receive_hello(j.hello(), now=NOW)
    with pytest.raises(ForgedRecordError) as info:
        h.receive_reveal(j.receive_keys(m2), now=NOW)
    assert str(info.value) == "authentication failed"


def test_codes_are_single_use_and_expire() -> None:
    h = host(ttl=120)
    first = PairingJoiner(h.code, device_name="a")
    h.receive_hello(first.hello(), now=NOW)
    with pytest.raises(PairingCodeError):
        h.receive_hello(PairingJoiner(h.code, device_name="b").hello(), now=NOW)
    late = host(b"late", ttl=120)
    with pytest.raises(PairingCodeError):
        late.receive_hello(PairingJoiner(late.code, device_name="a").hello(), now=NOW + 120)
    # Expiry also applies between hello and reveal.
    slow = host(b"slow", ttl=120)
    j = PairingJoiner(slow.code, device_name="a")
    m2 = slow.receive_hello(j.hello(), now=NOW + 100)
    with pytest.raises(PairingCodeError):
        slow.receive_reveal(j.receive_keys(m2), now=NOW + 121)


def test_codes_are_random() -> None:
    codes = {PairingHost(alice().signing_key, alice().identity_id, now=NOW).code for _ in range(50)}
    assert len(codes) == 50


def test_steps_out_of_order_are_refused() -> None:
    h = host()
    j = PairingJoiner(h.code, device_name="laptop")
    with pytest.raises(IdentityStateError):
        h.confirm(now=NOW)
    with pytest.raises(IdentityStateError):
        _ = h.sas
    run(h, j)
    welcome = h.confirm(now=NOW)
    with pytest.raises(IdentityStateError):
        j.receive_welcome(welcome)  # the joiner's user has not confirmed the SAS


def test_tampered_welcome_is_rejected() -> None:
    h = host()
    j = PairingJoiner(h.code, device_name="laptop")
    run(h, j)
    fields = canonical_decode(h.confirm(now=NOW))
    fields["box"] = fields["box"][:-1] + bytes([fields["box"][-1] ^ 1])
    j.confirm()
    with pytest.raises(ForgedRecordError):
        j.receive_welcome(canonical_encode(fields))


@pytest.mark.parametrize("code", ["", "ABCD", "ABCDE-FGHI1", "é" * 10, "A" * 100])
def test_malformed_codes_are_refused(code: str) -> None:
    with pytest.raises(PairingCodeError):
        PairingJoiner(code, device_name="x")


@settings(max_examples=200)
@given(hostile_bytes(max_size=300))
def test_garbage_messages_are_typed_errors(data: bytes) -> None:
    h = host()
    with pytest.raises(MalformedRecordError):
        h.receive_hello(data, now=NOW)
    j = PairingJoiner(host().code, device_name="x")
    j.hello()
    with pytest.raises(MalformedRecordError):
        j.receive_keys(data)


@settings(max_examples=200)
@given(st.text(max_size=300))
def test_garbage_qr_payloads_are_typed_errors(text: str) -> None:
    with pytest.raises(PairingCodeError):
        PairingJoiner.from_qr("dchat-pair:" + text, device_name="x", now=NOW)


# -- attestation ---------------------------------------------------------------


def test_attestation_is_verified_against_the_challenge_and_time() -> None:
    key = Identity.generate(SeededRng(b"dev")).signing_key
    facts = {"os": "linux 6.1", "app": "dchat 0.1", "keystore": "software"}
    nonce = SeededRng(b"nonce")(16)
    stmt = DeviceAttestation.create(key, alice().identity_id, facts, nonce=nonce, now=NOW)
    again = DeviceAttestation.from_bytes(stmt.to_bytes())
    again.verify(nonce=nonce, now=NOW + 10)
    assert again.facts == facts
    with pytest.raises(ForgedRecordError):
        again.verify(nonce=bytes(16), now=NOW)  # an answer to someone else's challenge
    with pytest.raises(ExpiredError):
        again.verify(nonce=nonce, now=NOW + 301)
    lying = DeviceAttestation(
        again.subject, again.device_key, {**facts, "keystore": "hardware"}, nonce,
        again.at_ms, again.signature,
    )  # fmt: skip
    with pytest.raises(ForgedRecordError):
        DeviceAttestation.from_bytes(lying.to_bytes()).verify(nonce=nonce, now=NOW)


@settings(max_examples=200)
@given(hostile_bytes(max_size=500))
def test_garbage_attestations_are_typed_errors(data: bytes) -> None:
    with pytest.raises(MalformedRecordError):
        DeviceAttestation.from_bytes(data)
