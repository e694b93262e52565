"""BurnerBook: a device's burners, their cards and expiry, as a node stores them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dchat_core import IdentityId, canonical_encode
from dchat_crypto.hazmat import ed25519_base_mul, ed25519_scalar_from_hash
from dchat_identity import BurnerStore, Identity, InvalidCardError, MalformedRecordError
from dchat_identity.lowlevel import BURNER_KEYS, BurnerBook, BurnerStateError, encode_map

NOW = 1_700_000_000.0
RELAY = "relay.example:7400"
HELD, STORE, CARDS, EXPIRED = BURNER_KEYS


def fresh() -> BurnerBook:
    return BurnerBook.from_blobs({}, now=NOW)


def create(book: BurnerBook, *, ttl: float = 600.0, name: str = "burner") -> str:
    burner, card = book.create(now=NOW, ttl=ttl, name=name, relay=RELAY, relay_node=None)
    assert card.identity_id == burner.identity_id
    assert card.expires_ms == burner.expires_ms
    return str(burner.identity_id)


def code_of(call: object) -> str:
    assert callable(call)
    with pytest.raises(BurnerStateError) as caught:
        call()
    return caught.value.code


def test_the_stored_keys_keep_their_names_and_order() -> None:
    assert BURNER_KEYS == ("burners.held", "burners.store", "burners.cards", "burners.expired")
    assert list(fresh().blobs()) == list(BURNER_KEYS)  # held seeds, then the keys, first


def test_a_burner_survives_a_round_trip_through_its_blobs() -> None:
    book = fresh()
    assert not book.changed
    burner_id = create(book, name="temp")
    assert book.changed
    again = BurnerBook.from_blobs(book.blobs(), now=NOW + 1)
    assert not again.changed
    assert [str(i) for i in again.ids()] == [burner_id]
    (row,) = again.rows()
    assert (row["burner_id"], row["name"], row["expires"]) == (burner_id, "temp", NOW + 600)
    burner, card = again.live(burner_id, now=NOW + 1)
    assert (str(burner.identity_id), card.name) == (burner_id, "temp")


def test_an_expired_burner_is_discarded_and_then_says_so() -> None:
    book = fresh()
    burner_id = create(book, ttl=60)
    reloaded = BurnerBook.from_blobs(book.blobs(), now=NOW + 61)
    assert [str(i) for i in reloaded.expire(now=NOW + 61)] == [burner_id]
    assert reloaded.changed
    assert reloaded.ids() == []
    assert reloaded.rows() == []
    later = BurnerBook.from_blobs(reloaded.blobs(), now=NOW + 62)
    assert len(later.store) == 0  # the keys are gone from the stored copy
    assert code_of(lambda: later.live(burner_id, now=NOW + 62)) == "burner_expired"
    assert code_of(lambda: later.discard(burner_id, now=NOW + 62)) == "burner_expired"


def test_a_discarded_burner_is_simply_unknown() -> None:
    book = fresh()
    burner_id = create(book)
    gone = book.discard(burner_id, now=NOW)
    assert str(gone) == burner_id
    assert book.ids() == []
    assert len(book.store) == 0
    assert code_of(lambda: book.live(burner_id, now=NOW)) == "not_found"
    assert code_of(lambda: book.discard(burner_id, now=NOW)) == "not_found"


@pytest.mark.parametrize("text", ["", "nonsense", "id:zzzz"])
def test_a_malformed_burner_id_is_not_found(text: str) -> None:
    assert code_of(lambda: fresh().live(text, now=NOW)) == "not_found"


def test_creation_is_rate_limited_and_the_spent_tokens_are_kept() -> None:
    book = fresh()
    for _ in range(3):
        create(book)
    with pytest.raises(BurnerStateError) as caught:
        create(book)
    assert caught.value.code == "rate_limited"
    assert "retry in" in str(caught.value)
    reloaded = BurnerBook.from_blobs(book.blobs(), now=NOW)
    assert code_of(lambda: create(reloaded)) == "rate_limited"


def test_a_card_that_cannot_be_issued_leaves_no_burner_behind() -> None:
    book = fresh()
    with pytest.raises(InvalidCardError):
        create(book, name="x" * 200)
    assert len(book.store) == 0
    assert book.ids() == []


def test_only_the_most_recent_expired_ids_are_remembered() -> None:
    expired = {bytes([i]) * IdentityId.SIZE: [i] for i in range(256)}
    book = BurnerBook(BurnerStore(now=NOW), {}, dict(expired))
    burner_id = create(book, ttl=1)
    assert book.expire(now=NOW + 2)
    remembered = BurnerBook.from_blobs(book.blobs(), now=NOW + 2)
    assert code_of(lambda: remembered.live(burner_id, now=NOW + 2)) == "burner_expired"
    oldest = str(IdentityId(bytes([0]) * IdentityId.SIZE))
    assert code_of(lambda: remembered.live(oldest, now=NOW + 2)) == "not_found"


@pytest.mark.parametrize("key", [CARDS, EXPIRED])
@pytest.mark.parametrize(
    "blob", [b"\xff\x00junk", canonical_encode([1, 2]), canonical_encode({"zz": [b"x"]})]
)
def test_malformed_stored_maps_are_corrupt_state(key: str, blob: bytes) -> None:
    assert code_of(lambda: BurnerBook.from_blobs({key: blob}, now=NOW)) == "corrupt_state"


def test_a_malformed_stored_card_is_corrupt_state() -> None:
    book = fresh()
    burner_id = create(book)
    blobs = book.blobs()
    blobs[CARDS] = encode_map({bytes(IdentityId.parse(burner_id)): [7]})
    broken = BurnerBook.from_blobs(blobs, now=NOW)
    assert code_of(lambda: broken.live(burner_id, now=NOW)) == "corrupt_state"
    assert code_of(broken.rows) == "corrupt_state"


def test_a_malformed_key_store_is_a_malformed_record() -> None:
    with pytest.raises(MalformedRecordError):
        BurnerBook.from_blobs({STORE: b"\x01\x02"}, now=NOW)


@given(st.sampled_from(BURNER_KEYS), st.binary(max_size=300))
def test_any_stored_blob_loads_or_raises_a_typed_error(key: str, blob: bytes) -> None:
    failure = None
    try:
        book = BurnerBook.from_blobs({key: blob}, now=NOW)
        book.expire(now=NOW, hold=True)
        book.rows()
        book.held()
        book.held_rows()
    except BurnerStateError as exc:
        failure = exc.code
    except MalformedRecordError:
        failure = "malformed store"
    assert failure in {None, "corrupt_state", "malformed store" if key == STORE else None}


def _meta_of(identity: Identity) -> bytes:
    """A stand-in for the chain's derivation: two valid points from the burner's seed."""
    seed = identity.signing_key.to_bytes()
    return b"".join(ed25519_base_mul(ed25519_scalar_from_hash(t + seed)) for t in (b"s", b"p"))


def test_a_burner_card_publishes_the_burners_own_meta_address() -> None:
    book = fresh()
    burner, card = book.create(now=NOW, ttl=600.0, name="b", relay=RELAY, stealth_of=_meta_of)
    assert card.stealth == _meta_of(burner.identity)
    again = BurnerBook.from_blobs(book.blobs(), now=NOW + 1)
    assert again.card(burner.identity_id).stealth == card.stealth
    assert again.add_stealth(_meta_of) == 0  # already there: nothing re-issued
    assert not again.changed


def test_an_old_burner_card_is_reissued_with_its_meta_address_once() -> None:
    book = fresh()
    old_id = create(book, name="old")  # issued before burners had meta-addresses
    book = BurnerBook.from_blobs(book.blobs(), now=NOW + 1)
    burner, old = book.live(old_id, now=NOW + 1)
    assert old.stealth is None
    assert book.add_stealth(_meta_of) == 1
    assert book.changed
    new = BurnerBook.from_blobs(book.blobs(), now=NOW + 2).card(burner.identity_id)
    assert new.stealth == _meta_of(burner.identity)
    assert (new.name, new.expires_ms, new.relays) == (old.name, old.expires_ms, old.relays)
    assert new.identity_key == burner.identity.signing_key.public_key  # signed by the burner


def _with_stealth(book: BurnerBook, ttl: float = 60.0) -> tuple[IdentityId, bytes]:
    burner, _ = book.create(now=NOW, ttl=ttl, name="b", relay=RELAY, stealth_of=_meta_of)
    return burner.identity_id, burner.identity.signing_key.to_bytes()


def test_an_expiring_burner_with_a_meta_address_keeps_its_seed_until_released() -> None:
    """Its stealth keys derive from its seed: dropping it would lose unswept funds."""
    book = fresh()
    burner_id, seed = _with_stealth(book)
    plain = IdentityId.parse(create(book, ttl=60))  # no meta-address: nothing to hold
    book = BurnerBook.from_blobs(book.blobs(), now=NOW + 61)
    assert set(book.expire(now=NOW + 61, hold=True)) == {burner_id, plain}
    assert book.newly_held == [burner_id]
    assert book.ids() == []  # gone for mail and use
    assert code_of(lambda: book.live(str(burner_id), now=NOW + 61)) == "burner_expired"
    held = BurnerBook.from_blobs(book.blobs(), now=NOW + 62)  # kept across a restart
    assert {i: k.to_bytes() for i, k in held.held().items()} == {burner_id: seed}
    assert held.held_rows() == [{"burner_id": str(burner_id), "expired": NOW + 60}]
    assert held.expire(now=NOW + 62, hold=True) == []
    assert held.newly_held == []  # told once
    assert held.release(burner_id)
    assert held.changed
    assert not held.release(burner_id)
    assert BurnerBook.from_blobs(held.blobs(), now=NOW + 63).held() == {}


def test_without_hold_an_expiring_burner_loses_its_seed_as_before() -> None:
    book = fresh()
    _with_stealth(book)
    book.expire(now=NOW + 61)
    assert book.held() == {}
    assert book.newly_held == []


def test_discarding_a_held_burner_deletes_its_seed() -> None:
    """The user's explicit choice (the node asks for force while funds are there)."""
    book = fresh()
    burner_id, _ = _with_stealth(book)
    book.expire(now=NOW + 61, hold=True)
    assert book.discard(str(burner_id), now=NOW + 61) == burner_id
    assert book.held() == {}
    assert code_of(lambda: book.discard(str(burner_id), now=NOW + 61)) == "burner_expired"
