"""Storage keys, sealed payloads and blind indexes."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from dchat_core import canonical_encode
from dchat_crypto import KdfParams
from dchat_storage import InvalidArgumentError, LockedError, StorageCorruptError
from dchat_storage._sealing import AeadSealer, Sealer, decode_payload, encode_payload
from dchat_storage.lowlevel import StorageKey
from dchat_testing import hostile_bytes

KEY = StorageKey.generate()


def test_storage_key_sizes_and_repr() -> None:
    raw = KEY.to_bytes()
    assert len(raw) == 32
    assert StorageKey.from_bytes(raw).to_bytes() == raw
    assert raw.hex() not in repr(KEY)
    with pytest.raises(InvalidArgumentError):
        StorageKey.from_bytes(b"short")


def test_wrap_unwrap_and_wrong_passphrase_is_opaque() -> None:
    blob = KEY.wrap("correct horse", params=KdfParams.TESTING)
    assert StorageKey.unwrap(blob, "correct horse").to_bytes() == KEY.to_bytes()
    errors = []
    for bad_blob, passphrase in ((blob, "wrong"), (blob[:20], "correct horse"), (b"", "x")):
        with pytest.raises(LockedError) as caught:
            StorageKey.unwrap(bad_blob, passphrase)
        errors.append(str(caught.value))
    assert len(set(errors)) == 1  # one opaque message, whatever failed


def test_sealed_values_are_randomized_and_bound_to_purpose_and_row() -> None:
    sealer = AeadSealer(KEY)
    a = sealer.seal("messages", b"row-1", b"hello")
    assert a != sealer.seal("messages", b"row-1", b"hello")  # fresh nonce each time
    assert b"hello" not in a
    assert sealer.open("messages", b"row-1", a) == b"hello"
    for purpose, ad in (("contacts", b"row-1"), ("messages", b"row-2")):
        with pytest.raises(StorageCorruptError):
            sealer.open(purpose, ad, a)
    with pytest.raises(StorageCorruptError):
        AeadSealer(StorageKey.generate()).open("messages", b"row-1", a)


def test_blind_indexes_are_keyed_and_per_purpose() -> None:
    sealer = AeadSealer(KEY)
    ix = sealer.index("contact-name", b"bob")
    assert ix == sealer.index("contact-name", b"bob")  # deterministic: usable for look-ups
    assert ix != sealer.index("identity-id", b"bob")
    assert ix != AeadSealer(StorageKey.generate()).index("contact-name", b"bob")
    assert b"bob" not in ix
    assert len(ix) == 32


def test_clear_sealer_is_the_identity() -> None:
    clear = Sealer()
    assert clear.seal("p", b"ad", b"x") == b"x" == clear.open("p", b"ad", b"x")
    assert clear.index("p", b"x") == b"x"
    assert not clear.encrypted


@given(data=st.binary(max_size=200), position=st.integers(min_value=0), flip=st.integers(1, 255))
def test_any_flipped_byte_fails_authentication(data: bytes, position: int, flip: int) -> None:
    sealer = AeadSealer(KEY)
    sealed = bytearray(sealer.seal("p", b"ad", data))
    sealed[position % len(sealed)] ^= flip
    with pytest.raises(StorageCorruptError):
        sealer.open("p", b"ad", bytes(sealed))


@given(hostile_bytes(max_size=100))
def test_garbage_never_opens(data: bytes) -> None:
    with pytest.raises(StorageCorruptError):
        AeadSealer(KEY).open("p", b"", data)


_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.text(max_size=3)
)
_NESTED = st.recursive(
    _SCALARS | st.lists(st.integers(0, 9), min_size=100, max_size=300),  # near the item limit
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=2), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(st.dictionaries(st.text(max_size=3), _NESTED, max_size=4))
@example({"a": {"b": {"c": {"d": {}}}}})  # the edges: at the depth limit, empty and not
@example({"a": {"b": {"c": {"d": {"e": 1}}}}})
@example({"x": list(range(254))})  # 256 items (the entry counts twice), and one more
@example({"x": list(range(255))})
def test_a_record_is_refused_exactly_when_it_could_not_be_read_back(
    record: dict[str, object],
) -> None:
    # encode_payload checks the shape without decoding (every stored record passes it):
    # it must agree with what decode_payload accepts.
    sealer = AeadSealer(KEY)
    try:
        stored = encode_payload(sealer, "test", b"", record)
    except InvalidArgumentError:
        sealed = sealer.seal("test", b"", canonical_encode(record))  # stored regardless
        with pytest.raises(StorageCorruptError):
            decode_payload(sealer, "test", b"", sealed)
    else:
        assert decode_payload(sealer, "test", b"", stored) == record
