"""Asynchronous session setup: agreement, hybrid dependence, authentication, replay."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_core import canonical_decode
from dchat_crypto import (
    DchatCryptoError,
    DecryptionError,
    PrekeyBundle,
    PrekeySecrets,
    PrivateKey,
    PublicKey,
    SessionInit,
    SigningKey,
    VerifyKey,
    XWingPrivateKey,
    _session_setup,
    accept_session,
    initiate_session,
)
from dchat_crypto._prekey_secrets import MAX_DELIVERY_DELAY
from dchat_crypto.hazmat import (
    InvalidBundleError,
    InvalidSessionInitError,
    PrekeyArgumentError,
    PrekeyReusedError,
)

NOW = 1_800_000_000.0
AD = b"dchat-test alice->bob"


@dataclass
class Party:
    identity: SigningKey
    static: PrivateKey


@dataclass
class World:
    alice: Party
    bob: Party
    bob_prekeys: PrekeySecrets

    def bundle(self, *, one_time: bool = True) -> PrekeyBundle:
        opk = self.bob_prekeys.one_time_prekey_ids[0] if one_time else None
        return self.bob_prekeys.bundle(self.bob.identity, one_time_prekey_id=opk)

    def initiate(self, bundle: PrekeyBundle | None = None) -> tuple[SessionInit, object, PublicKey]:
        a = self.alice
        return initiate_session(
            a.identity, a.static, bundle or self.bundle(), now=NOW, associated_data=AD
        )

    def accept(
        self, init: SessionInit, *, now: float = NOW, ad: bytes = AD
    ) -> tuple[object, PrivateKey, VerifyKey]:
        return accept_session(self.bob_prekeys, self.bob.static, init, now=now, associated_data=ad)


def make_world() -> World:
    alice = Party(SigningKey.generate(), PrivateKey.generate())
    bob = Party(SigningKey.generate(), PrivateKey.generate())
    prekeys = PrekeySecrets.generate(
        bob.identity.public_key, bob.static.public_key, now=NOW - 10, one_time_count=4
    )
    return World(alice, bob, prekeys)


@pytest.fixture
def world() -> World:
    return make_world()


@pytest.mark.parametrize("one_time", [True, False])
def test_both_sides_derive_identical_secrets(world: World, one_time: bool) -> None:
    init, alice_secrets, bob_ratchet_public = world.initiate(world.bundle(one_time=one_time))
    parsed = SessionInit.from_bytes(init.to_bytes())
    assert parsed == init
    bob_secrets, bob_ratchet_private, alice_identity = world.accept(parsed)
    assert bob_secrets == alice_secrets
    assert bob_ratchet_private.public_key == bob_ratchet_public
    assert alice_identity == world.alice.identity.public_key
    keys = (
        bob_secrets.root_key,
        bob_secrets.initiator_header_key,
        bob_secrets.responder_next_header_key,
    )
    assert all(len(k) == 32 for k in keys)
    assert len(set(keys)) == 3


def test_each_session_has_fresh_secrets(world: World) -> None:
    bundle = world.bundle(one_time=False)
    first, second = world.initiate(bundle), world.initiate(bundle)
    assert first[1] != second[1]
    assert first[0].xwing_ciphertext != second[0].xwing_ciphertext


def test_wire_format(world: World) -> None:
    init, _, _ = world.initiate()
    value = canonical_decode(init.to_bytes())
    assert set(value) == {"v", "spk_id", "pq_id", "opk_id", "ct", "hs"}
    assert len(value["ct"]) == 1120
    assert value["opk_id"] == world.bob_prekeys.one_time_prekey_ids[0]


# -- hybrid: both the classical and the post-quantum input matter ------------------------------


class _WrongDH:
    """Presents a key's public half but computes DH with another private key."""

    def __init__(self, real: PrivateKey) -> None:
        self._real, self._other = real, PrivateKey.generate()

    @property
    def public_key(self) -> PublicKey:
        return self._real.public_key

    def exchange(self, peer: PublicKey) -> bytes:
        return self._other.exchange(peer)


def _swap_in_current(world: World, **changes: object) -> None:
    gens = world.bob_prekeys._generations
    gens[-1] = dataclasses.replace(gens[-1], **changes)


def test_wrong_signed_prekey_private_half_fails(world: World) -> None:
    init, _, _ = world.initiate()
    gen = world.bob_prekeys._generations[-1]
    _swap_in_current(world, signed_prekey=_WrongDH(gen.signed_prekey))
    with pytest.raises(DecryptionError):
        world.accept(init)


def test_wrong_responder_static_dh_fails(world: World) -> None:
    init, _, _ = world.initiate()
    with pytest.raises(DecryptionError):
        accept_session(
            world.bob_prekeys, _WrongDH(world.bob.static), init, now=NOW, associated_data=AD
        )  # type: ignore[arg-type]


def test_wrong_one_time_prekey_private_half_fails(world: World) -> None:
    init, _, _ = world.initiate()
    opk_id = init.one_time_prekey_id
    assert opk_id is not None
    world.bob_prekeys._one_time[opk_id] = _WrongDH(world.bob_prekeys._one_time[opk_id])  # type: ignore[assignment]
    with pytest.raises(DecryptionError):
        world.accept(init)


def test_different_mlkem_decapsulation_key_fails(world: World) -> None:
    # Only the ML-KEM half changes: same X-Wing public key, same X25519 half,
    # so the handshake fails only because the session depends on ML-KEM's secret.
    init, _, _ = world.initiate()
    xwing = world.bob_prekeys._generations[-1].xwing_prekey
    tampered = XWingPrivateKey.from_seed(xwing.to_seed())
    tampered._mlkem = MLKEM768PrivateKey.generate()
    _swap_in_current(world, xwing_prekey=tampered)
    with pytest.raises(DecryptionError):
        world.accept(init)


def test_different_xwing_key_fails(world: World) -> None:
    init, _, _ = world.initiate()
    _swap_in_current(world, xwing_prekey=XWingPrivateKey.generate())
    with pytest.raises(DecryptionError):
        world.accept(init)


@pytest.mark.parametrize("position", [0, 700, 1087, 1088, 1119])
def test_flipped_ciphertext_byte_fails(world: World, position: int) -> None:
    init, _, _ = world.initiate()
    ct = bytearray(init.xwing_ciphertext)
    ct[position] ^= 0x04
    with pytest.raises(DecryptionError):
        world.accept(dataclasses.replace(init, xwing_ciphertext=bytes(ct)))


def test_psk_depends_on_each_input() -> None:
    inputs = [bytes([i]) * 32 for i in range(3)]
    base = _session_setup._psk(*inputs)
    for i in range(3):
        changed = list(inputs)
        changed[i] = b"\xee" * 32
        assert _session_setup._psk(*changed) != base


def test_associated_data_must_match(world: World) -> None:
    init, _, _ = world.initiate()
    with pytest.raises(DecryptionError):
        world.accept(init, ad=AD + b"!")


# -- forged bundles -------------------------------------------------------------------------


def test_forged_bundles_are_refused_by_the_initiator(world: World) -> None:
    bundle = world.bundle()
    swapped = dataclasses.replace(bundle, signed_prekey=PrivateKey.generate().public_key)
    sig = bytearray(bundle.signature)
    sig[0] ^= 1
    for forged in (swapped, dataclasses.replace(bundle, signature=bytes(sig))):
        with pytest.raises(InvalidBundleError):
            world.initiate(forged)
    a = world.alice
    with pytest.raises(InvalidBundleError):
        initiate_session(a.identity, a.static, bundle, now=bundle.expires_at, associated_data=AD)


def test_low_order_key_in_a_validly_signed_bundle_is_refused(world: World) -> None:
    bundle = world.bundle()
    evil = PrekeyBundle.sign(
        world.bob.identity,
        static_key=PublicKey(bytes(32)),
        signed_prekey=(bundle.signed_prekey_id, bundle.signed_prekey),
        expires_at=bundle.expires_at,
        xwing_prekey=(bundle.xwing_prekey_id, bundle.xwing_prekey),
    )
    with pytest.raises(InvalidBundleError):
        world.initiate(evil)


# -- single use and replay --------------------------------------------------------------------


def test_one_time_prekey_is_used_once(world: World) -> None:
    bundle = world.bundle()
    first, second = world.initiate(bundle), world.initiate(bundle)
    world.accept(first[0])
    assert bundle.one_time_prekey_id not in world.bob_prekeys.one_time_prekey_ids
    before = world.bob_prekeys.to_bytes()
    with pytest.raises(PrekeyReusedError):
        world.accept(second[0])
    assert world.bob_prekeys.to_bytes() == before


@pytest.mark.parametrize("one_time", [True, False])
def test_replayed_init_is_rejected_even_after_a_restart(world: World, one_time: bool) -> None:
    init, _, _ = world.initiate(world.bundle(one_time=one_time))
    world.accept(init)
    with pytest.raises(PrekeyReusedError):
        world.accept(init)
    world.bob_prekeys = PrekeySecrets.from_bytes(world.bob_prekeys.to_bytes())
    with pytest.raises(PrekeyReusedError):
        world.accept(init)


def test_failed_accept_consumes_nothing(world: World) -> None:
    init, alice_secrets, _ = world.initiate()
    before = world.bob_prekeys.to_bytes()
    with pytest.raises(DecryptionError):
        world.accept(init, ad=b"other")
    assert world.bob_prekeys.to_bytes() == before
    assert world.accept(init)[0] == alice_secrets  # the genuine accept still works


# -- the initiator's identity -------------------------------------------------------------------


def test_identity_signature_over_another_static_key_is_rejected(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = _session_setup._identity_payload
    other = PrivateKey.generate()
    monkeypatch.setattr(_session_setup, "_identity_payload", lambda ik, _static: real(ik, other))
    init, _, _ = world.initiate()
    with pytest.raises(DecryptionError):
        world.accept(init)


def test_claiming_someone_elses_identity_is_rejected(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = SigningKey.generate()
    real = _session_setup._identity_payload

    def claim(_ik: SigningKey, static: PrivateKey) -> bytes:
        forged = bytearray(real(victim, static))
        forged[-1] ^= 1  # the attacker cannot produce the victim's signature
        return bytes(forged)

    monkeypatch.setattr(_session_setup, "_identity_payload", claim)
    init, _, _ = world.initiate()
    with pytest.raises(DecryptionError):
        world.accept(init)


# -- prekey lookup and arguments ---------------------------------------------------------------


def test_unknown_or_retired_prekeys(world: World) -> None:
    init, _, _ = world.initiate()
    for bad in (
        dataclasses.replace(init, signed_prekey_id=999_999),
        dataclasses.replace(init, xwing_prekey_id=init.signed_prekey_id),
        dataclasses.replace(init, one_time_prekey_id=999_999),
    ):
        with pytest.raises(InvalidSessionInitError):
            world.accept(bad)
    expiry = world.bob_prekeys.expires_at
    with pytest.raises(InvalidSessionInitError):
        world.accept(init, now=expiry + MAX_DELIVERY_DELAY + 1)
    world.accept(init, now=expiry + MAX_DELIVERY_DELAY)  # late but within the delivery window


def test_init_for_a_rotated_generation_still_opens(world: World) -> None:
    init, secrets, _ = world.initiate(world.bundle(one_time=False))
    world.bob_prekeys.rotate(now=NOW + 1)
    assert world.accept(init)[0] == secrets


def test_argument_errors(world: World) -> None:
    init, _, _ = world.initiate()
    with pytest.raises(PrekeyArgumentError):
        accept_session(world.bob_prekeys, PrivateKey.generate(), init, now=NOW, associated_data=AD)
    with pytest.raises(PrekeyArgumentError):
        world.accept(init, now=float("nan"))
    with pytest.raises(PrekeyArgumentError):
        world.accept(init, ad="text")  # type: ignore[arg-type]
    a, bundle = world.alice, world.bundle()
    with pytest.raises(PrekeyArgumentError):
        initiate_session(a.identity, a.static, bundle, now=float("inf"), associated_data=AD)
    with pytest.raises(PrekeyArgumentError):
        initiate_session(a.identity, a.static, bundle, now=NOW, associated_data=None)  # type: ignore[arg-type]


# -- hostile bytes ----------------------------------------------------------------------------

_WORLD = make_world()
_INIT = _WORLD.initiate(_WORLD.bundle())[0]
_INIT_BYTES = _INIT.to_bytes()


def _mutations() -> st.SearchStrategy[bytes]:
    flips = st.tuples(st.integers(0, len(_INIT_BYTES) - 1), st.integers(1, 255)).map(
        lambda pm: (
            _INIT_BYTES[: pm[0]] + bytes([_INIT_BYTES[pm[0]] ^ pm[1]]) + _INIT_BYTES[pm[0] + 1 :]
        )
    )
    cuts = st.integers(0, len(_INIT_BYTES) - 1).map(lambda n: _INIT_BYTES[:n])
    return flips | cuts | st.binary(max_size=1500)


@settings(max_examples=300, deadline=None)
@given(_mutations())
def test_hostile_init_bytes_give_typed_errors_and_change_nothing(data: bytes) -> None:
    before = _WORLD.bob_prekeys.to_bytes()
    with pytest.raises(DchatCryptoError) as caught:
        _WORLD.accept(SessionInit.from_bytes(data))
    assert isinstance(
        caught.value,
        InvalidSessionInitError | DecryptionError | PrekeyReusedError,
    )
    assert _WORLD.bob_prekeys.to_bytes() == before


@settings(max_examples=100, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.none() | st.integers(0, 2**32 - 1),
    st.binary(min_size=1120, max_size=1120),
    st.binary(min_size=80, max_size=1024),
)
def test_session_init_round_trips(spk: int, pq: int, opk: int | None, ct: bytes, hs: bytes) -> None:
    init = SessionInit(spk, pq, opk, ct, hs)
    assert SessionInit.from_bytes(init.to_bytes()) == init


@pytest.mark.parametrize(
    "kwargs",
    [
        {"signed_prekey_id": -1},
        {"xwing_prekey_id": 2**32},
        {"one_time_prekey_id": True},
        {"xwing_ciphertext": bytes(1119)},
        {"handshake": bytes(79)},
        {"handshake": bytes(1025)},
    ],
)
def test_session_init_fields_are_checked(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidSessionInitError):
        dataclasses.replace(_INIT, **kwargs)
