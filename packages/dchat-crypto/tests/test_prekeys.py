"""Signed prekey bundles and the owner's PrekeySecrets."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_core import canonical_decode, canonical_encode
from dchat_crypto import PrekeyBundle, PrekeySecrets, PrivateKey, SigningKey, XWingPrivateKey
from dchat_crypto._prekey_secrets import MAX_DELIVERY_DELAY, MAX_ONE_TIME_PREKEYS
from dchat_crypto.hazmat import InvalidBundleError, InvalidPrekeyStateError, PrekeyArgumentError
from dchat_testing import SeededRng, hostile_bytes, make_signing_key, seeded_random

NOW = 1_800_000_000.0
DAY = 86400.0

_IDENTITY = make_signing_key(seeded_random("prekeys identity"))
_STATIC = PrivateKey.from_bytes(SeededRng(b"prekeys static")(32))
_SECRETS = PrekeySecrets.generate(
    _IDENTITY.public_key, _STATIC.public_key, now=NOW, one_time_count=2
)
_BUNDLE = _SECRETS.bundle(_IDENTITY, one_time_prekey_id=_SECRETS.one_time_prekey_ids[0])
_BUNDLE_BYTES = _BUNDLE.to_bytes()


def test_bundle_round_trips_and_verifies() -> None:
    parsed = PrekeyBundle.from_bytes(_BUNDLE_BYTES)
    assert parsed == _BUNDLE
    assert parsed.to_bytes() == _BUNDLE_BYTES
    parsed.verify(NOW)
    assert parsed.identity_key == _IDENTITY.public_key
    assert parsed.static_key == _STATIC.public_key
    assert parsed.one_time_prekey_id == _SECRETS.one_time_prekey_ids[0]


def test_bundle_without_one_time_prekey() -> None:
    bundle = _SECRETS.bundle(_IDENTITY)
    assert bundle.one_time is None
    assert "opk" not in canonical_decode(bundle.to_bytes())
    PrekeyBundle.from_bytes(bundle.to_bytes()).verify(NOW)


def test_bundle_wire_format_is_the_documented_map() -> None:
    value = canonical_decode(_BUNDLE_BYTES)
    assert set(value) == {
        "v",
        "ik",
        "ek",
        "spk_id",
        "spk",
        "exp",
        "pq_id",
        "pq",
        "opk_id",
        "opk",
        "sig",
    }
    body = {k: v for k, v in value.items() if k != "sig"}
    _IDENTITY.public_key.verify(
        value["sig"], b"dchat-prekey-bundle-v1\x00" + canonical_encode(body)
    )


def _other_public() -> object:
    return PrivateKey.generate().public_key


SUBSTITUTIONS = {
    "identity_key": lambda: SigningKey.generate().public_key,
    "static_key": _other_public,
    "signed_prekey": _other_public,
    "signed_prekey_id": lambda: _BUNDLE.signed_prekey_id + 1,
    "expires_at": lambda: _BUNDLE.expires_at + 1,
    "xwing_prekey": lambda: XWingPrivateKey.generate().public_key,
    "xwing_prekey_id": lambda: _BUNDLE.xwing_prekey_id + 7,
    "one_time_prekey": _other_public,
    "one_time_prekey_id": lambda: 12345,
}


@pytest.mark.parametrize("name", sorted(SUBSTITUTIONS))
def test_every_field_is_covered_by_the_signature(name: str) -> None:
    forged = dataclasses.replace(_BUNDLE, **{name: SUBSTITUTIONS[name]()})
    with pytest.raises(InvalidBundleError):
        forged.verify(NOW)
    with pytest.raises(InvalidBundleError):
        PrekeyBundle.from_bytes(forged.to_bytes()).verify(NOW)


def test_dropping_the_one_time_prekey_breaks_the_signature() -> None:
    forged = dataclasses.replace(_BUNDLE, one_time_prekey_id=None, one_time_prekey=None)
    with pytest.raises(InvalidBundleError):
        forged.verify(NOW)


def test_bad_signature_is_rejected() -> None:
    bad = bytearray(_BUNDLE.signature)
    bad[5] ^= 0x20
    with pytest.raises(InvalidBundleError):
        dataclasses.replace(_BUNDLE, signature=bytes(bad)).verify(NOW)


def test_bundle_signed_by_another_identity_claiming_ours_is_rejected() -> None:
    attacker = SigningKey.generate()
    resigned = PrekeyBundle.sign(
        attacker,
        static_key=_BUNDLE.static_key,
        signed_prekey=(_BUNDLE.signed_prekey_id, _BUNDLE.signed_prekey),
        expires_at=_BUNDLE.expires_at,
        xwing_prekey=(_BUNDLE.xwing_prekey_id, _BUNDLE.xwing_prekey),
    )
    resigned.verify(NOW)  # valid for the attacker's own identity ...
    claimed = dataclasses.replace(resigned, identity_key=_IDENTITY.public_key)
    with pytest.raises(InvalidBundleError):
        claimed.verify(NOW)  # ... but not as ours


def test_expiry() -> None:
    _BUNDLE.verify(_BUNDLE.expires_at - 0.5)
    for now in (_BUNDLE.expires_at, _BUNDLE.expires_at + DAY):
        with pytest.raises(InvalidBundleError):
            _BUNDLE.verify(now)
    for bad in (float("nan"), float("inf"), True):
        with pytest.raises(InvalidBundleError):
            _BUNDLE.verify(bad)


@pytest.mark.parametrize(
    "change",
    [
        lambda m: m.update(v=2),
        lambda m: m.update(extra=1),
        lambda m: m.pop("pq"),
        lambda m: m.pop("opk"),
        lambda m: m.update(spk=m["spk"][:31]),
        lambda m: m.update(pq=m["pq"] + b"\x00"),
        lambda m: m.update(sig=m["sig"][:63]),
        lambda m: m.update(spk_id=2**32),
        lambda m: m.update(spk_id=-1),
        lambda m: m.update(exp=2**60),
        lambda m: m.update(ik="text"),
        lambda m: m.update(pq=b"\xff" * 1216),
    ],
)
def test_structurally_bad_bundles_are_rejected(change: object) -> None:
    value = canonical_decode(_BUNDLE_BYTES)
    change(value)  # type: ignore[operator]
    with pytest.raises(InvalidBundleError):
        PrekeyBundle.from_bytes(canonical_encode(value))


def test_non_canonical_bundle_bytes_are_rejected() -> None:
    with pytest.raises(InvalidBundleError):
        PrekeyBundle.from_bytes(_BUNDLE_BYTES + b"\x00")
    with pytest.raises(InvalidBundleError):
        PrekeyBundle.from_bytes(bytes(5000))


@settings(max_examples=300, deadline=None)
@given(hostile_bytes(max_size=2000))
def test_random_bytes_are_not_a_bundle(data: bytes) -> None:
    with pytest.raises(InvalidBundleError):
        PrekeyBundle.from_bytes(data)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(_BUNDLE_BYTES) - 1), st.integers(1, 255), st.booleans())
def test_flipped_or_truncated_bundles_never_verify(position: int, mask: int, cut: bool) -> None:
    if cut:
        data = _BUNDLE_BYTES[:position]
    else:
        flipped = bytearray(_BUNDLE_BYTES)
        flipped[position] ^= mask
        data = bytes(flipped)
    with pytest.raises(InvalidBundleError):
        PrekeyBundle.from_bytes(data).verify(NOW)


# -- PrekeySecrets -------------------------------------------------------------------------


def _fresh(**kwargs: object) -> PrekeySecrets:
    return PrekeySecrets.generate(_IDENTITY.public_key, _STATIC.public_key, now=NOW, **kwargs)  # type: ignore[arg-type]


def test_one_time_prekeys_have_unique_ids_and_bundle_only_unused_ones() -> None:
    secrets = _fresh(one_time_count=5)
    ids = secrets.one_time_prekey_ids
    assert len(set(ids)) == 5
    assert secrets.signed_prekey_id not in ids
    more = secrets.generate_one_time_prekeys(3)
    assert not set(more) & set(ids)
    with pytest.raises(PrekeyArgumentError):
        secrets.bundle(_IDENTITY, one_time_prekey_id=max(more) + 100)


def test_bundle_needs_the_owners_signing_key() -> None:
    with pytest.raises(PrekeyArgumentError):
        _fresh().bundle(SigningKey.generate())


def test_bad_arguments() -> None:
    with pytest.raises(PrekeyArgumentError):
        _fresh(one_time_count=-1)
    with pytest.raises(PrekeyArgumentError):
        _fresh(lifetime=0)
    with pytest.raises(PrekeyArgumentError):
        _fresh(one_time_count=MAX_ONE_TIME_PREKEYS + 1)
    with pytest.raises(PrekeyArgumentError):
        PrekeySecrets.generate(_IDENTITY.public_key, _STATIC.public_key, now=float("nan"))


def test_rotation_publishes_a_new_generation_and_prune_retires_old_ones() -> None:
    secrets = _fresh(lifetime=DAY)
    old = secrets.bundle(_IDENTITY)
    secrets.rotate(now=NOW + DAY / 2, lifetime=DAY)
    new = secrets.bundle(_IDENTITY)
    assert new.signed_prekey_id != old.signed_prekey_id
    assert new.signed_prekey != old.signed_prekey
    assert new.xwing_prekey != old.xwing_prekey
    assert secrets._generation(old.signed_prekey_id) is not None
    secrets.prune(now=old.expires_at + MAX_DELIVERY_DELAY)
    assert secrets._generation(old.signed_prekey_id) is not None
    secrets.prune(now=old.expires_at + MAX_DELIVERY_DELAY + 1)
    assert secrets._generation(old.signed_prekey_id) is None
    secrets.prune(now=NOW + 1000 * DAY)  # never drops the current generation
    assert secrets.bundle(_IDENTITY).signed_prekey_id == new.signed_prekey_id


def test_state_round_trips() -> None:
    secrets = _fresh(one_time_count=4)
    secrets.rotate(now=NOW + 1)
    data = secrets.to_bytes()
    restored = PrekeySecrets.from_bytes(data)
    assert restored.to_bytes() == data
    assert restored.one_time_prekey_ids == secrets.one_time_prekey_ids
    assert restored.bundle(_IDENTITY).signed_prekey == secrets.bundle(_IDENTITY).signed_prekey


def test_repr_shows_no_secret() -> None:
    secrets = _fresh(one_time_count=1)
    text = repr(secrets)
    gen = secrets._generations[-1]
    for secret in (gen.signed_prekey.to_bytes(), gen.xwing_prekey.to_seed()):
        assert secret.hex()[:16] not in text


@pytest.mark.parametrize(
    "change",
    [
        lambda m: m.update(next=0),  # ids at or above the counter
        lambda m: m.update(gens=[]),
        lambda m: m["gens"].append(dict(m["gens"][0])),  # duplicate ids
        lambda m: m.update(opks=list(reversed(m["opks"]))),
        lambda m: m["gens"][0].update(seen=[b"\x01" * 32, b"\x00" * 32]),
        lambda m: m["gens"][0].update(seen=[b"\x01" * 31]),
        lambda m: m["gens"][0].update(pq=b"\x00" * 31),
        lambda m: m.update(v=2),
    ],
)
def test_inconsistent_state_is_rejected(change: object) -> None:
    value = canonical_decode(_fresh(one_time_count=2).to_bytes())
    change(value)  # type: ignore[operator]
    with pytest.raises(InvalidPrekeyStateError):
        PrekeySecrets.from_bytes(canonical_encode(value))


_STATE_BYTES = _SECRETS.to_bytes()


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=600) | st.integers(0, len(_STATE_BYTES) - 1).map(lambda n: _STATE_BYTES[:n])
)
def test_random_or_truncated_state_bytes_give_a_typed_error(data: bytes) -> None:
    with pytest.raises(InvalidPrekeyStateError):
        PrekeySecrets.from_bytes(data)
