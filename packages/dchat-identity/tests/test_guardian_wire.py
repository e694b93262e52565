"""The guardian control payloads: round trips, and total decoding of hostile bytes."""

from __future__ import annotations

import contextlib
import functools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_core import DchatError, canonical_encode
from dchat_identity import (
    ContactCard,
    Guardian,
    Identity,
    IdentityDocument,
    RecoveryRequest,
    RecoveryVeto,
    approve_recovery,
    setup_guardians,
)
from dchat_identity.lowlevel import (
    ApprovalMessage,
    InfoMessage,
    LookupMessage,
    RequestMessage,
    ShareMessage,
    VetoMessage,
)

NOW = 1_800_000_000.0
DECODERS = (ShareMessage, LookupMessage, InfoMessage, RequestMessage, ApprovalMessage, VetoMessage)


@functools.cache
def samples() -> list[bytes]:
    owner, new = Identity.generate(), Identity.generate()
    guardians = [Identity.generate() for _ in range(3)]
    gset, shares = setup_guardians(
        owner.identity_id,
        [Guardian(g.signing_key.public_key, g.encryption_key.public_key) for g in guardians],
        2,
    )
    v1 = IdentityDocument.genesis(owner.signing_key, owner.encryption_key.public_key, now=NOW)
    head = v1.successor(owner.signing_key, now=NOW + 1, guardians=gset.set_hash)
    request = RecoveryRequest.create(new, head, gset, now=NOW + 2, lock=60.0)
    approval, release = approve_recovery(guardians[0], shares[0], request, now=NOW + 3)
    owner_card = ContactCard.issue(owner, name="owner", relay="127.0.0.1:1")
    new_card = ContactCard.issue(new, name="new", relay="127.0.0.1:1")
    return [
        ShareMessage(shares[0], owner_card).to_bytes(),
        LookupMessage(owner.identity_id, new_card).to_bytes(),
        InfoMessage(gset, head).to_bytes(),
        RequestMessage(request, new_card).to_bytes(),
        ApprovalMessage(approval, release).to_bytes(),
        VetoMessage(RecoveryVeto.sign(owner, request, now=NOW + 4)).to_bytes(),
    ]


@pytest.mark.parametrize("index", range(len(DECODERS)))
def test_round_trip(index: int) -> None:
    data = samples()[index]
    assert DECODERS[index].from_bytes(data).to_bytes() == data  # type: ignore[attr-defined]


def test_a_request_with_someone_elses_card_is_refused() -> None:
    request = RequestMessage.from_bytes(samples()[3])
    other = ContactCard.issue(Identity.generate(), name="x", relay="127.0.0.1:1")
    with pytest.raises(DchatError):
        RequestMessage.from_bytes(RequestMessage(request.request, other).to_bytes())


def _decodes_or_refuses(decoder: type, data: bytes) -> None:
    # Total: a value, or a dchat error; anything else (KeyError, IndexError...) fails.
    with contextlib.suppress(DchatError):
        decoder.from_bytes(data)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(DECODERS), st.binary(max_size=600))
def test_random_bytes_give_a_typed_error(decoder: type, data: bytes) -> None:
    _decodes_or_refuses(decoder, data)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(DECODERS) - 1), st.data())
def test_mutated_payloads_give_a_value_or_a_typed_error(index: int, data: st.DataObject) -> None:
    raw = bytearray(samples()[index])
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(raw) - 1))
        raw[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    _decodes_or_refuses(DECODERS[index], bytes(raw[:cut]) if cut % 3 == 0 else bytes(raw))


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from(["v", "share", "card", "id", "req", "veto", "x"]),
                       st.one_of(st.integers(-2, 3), st.binary(max_size=40), st.text(max_size=5)),
                       max_size=4))  # fmt: skip
def test_wrong_fields_give_a_typed_error(fields: dict[str, object]) -> None:
    for decoder in DECODERS:
        with pytest.raises(DchatError):
            decoder.from_bytes(canonical_encode(fields))
