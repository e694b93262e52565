"""Garbage into every decoder: only typed errors, never a crash or a partial object."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_core import canonical_encode
from dchat_identity import (
    DchatIdentityError,
    DeviceCertificate,
    DeviceRevocation,
    DocumentChain,
    ForgedRecordError,
    Identity,
    IdentityDocument,
    MalformedRecordError,
)
from dchat_testing import hostile_bytes

from .conftest import SeededRng

NOW = 1_700_000_000.0
DECODERS = [
    IdentityDocument.from_bytes,
    DocumentChain.from_bytes,
    DeviceCertificate.from_bytes,
    DeviceRevocation.from_bytes,
]

_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64 - 1),
    st.binary(max_size=70),
    st.text(max_size=70),
    st.lists(st.binary(max_size=40), max_size=3),
)


@settings(max_examples=300)
@given(hostile_bytes(max_size=2000))
def test_random_bytes_are_malformed(data: bytes) -> None:
    for decode in DECODERS:
        with pytest.raises(MalformedRecordError):
            decode(data)


@settings(max_examples=300)
@given(
    st.dictionaries(
        st.sampled_from(
            ["v", "id", "seq", "prev", "key", "enc", "issued", "devices", "revoked",
             "prekeys", "profile", "guardians", "exp", "recovery", "sig", "dev", "dh",
             "name", "at", "docs", "x"]
        ),
        _VALUES,
    )
)  # fmt: skip
def test_structured_garbage_is_a_typed_error(fields: dict[str, Any]) -> None:
    for decode in DECODERS:
        with pytest.raises((MalformedRecordError, ForgedRecordError)):
            decode(canonical_encode(fields))


def _doc() -> IdentityDocument:
    a = Identity.generate(SeededRng(b"a"))
    return IdentityDocument.genesis(a.signing_key, a.encryption_key.public_key, now=NOW)


@settings(max_examples=200)
@given(st.data())
def test_any_single_field_substitution_in_a_document_is_rejected(data: st.DataObject) -> None:
    doc = _doc()
    fields = {**doc._fields(), "sig": doc.signature}
    key = data.draw(st.sampled_from(sorted(fields)))
    fields[key] = data.draw(_VALUES.filter(lambda v: v != fields[key]))
    with pytest.raises((MalformedRecordError, ForgedRecordError)):
        IdentityDocument.from_bytes(canonical_encode(fields))


def test_every_error_is_a_dchat_identity_error() -> None:
    for cls in (MalformedRecordError, ForgedRecordError):
        assert issubclass(cls, DchatIdentityError)
    assert issubclass(MalformedRecordError, ValueError)
    assert str(ForgedRecordError()) == "authentication failed"
