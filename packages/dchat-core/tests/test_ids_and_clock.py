"""Identifiers are self-certifying and parse strictly; clocks move only forward."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dchat_core import (
    CallerError,
    IdentityId,
    InvalidIdError,
    MailboxId,
    ManualClock,
    MessageId,
    NodeId,
    SystemClock,
)


@given(st.binary(min_size=32, max_size=32))
def test_text_form_roundtrips(key: bytes) -> None:
    ident = IdentityId.derive(key)
    assert IdentityId.parse(str(ident)) == ident
    assert str(ident).startswith("dcid1")


def test_domains_separate_id_kinds() -> None:
    key = bytes(range(32))
    assert bytes(IdentityId.derive(key)) != bytes(NodeId.derive(key))
    assert bytes(NodeId.derive(key)) != bytes(MailboxId.derive(key))
    assert IdentityId.derive(key) != IdentityId.derive(bytes(32))


@pytest.mark.parametrize(
    "text",
    ["", "dcid1", "dcnd1" + "a" * 52, "dcid1" + "!" * 52, "dcid1" + "a" * 51, "dcid1" + "A" * 52],
)
def test_bad_text_is_rejected(text: str) -> None:
    with pytest.raises(InvalidIdError):
        IdentityId.parse(text)


def test_message_ids_are_random_and_sized() -> None:
    first, second = MessageId.random(), MessageId.random()
    assert first != second
    assert len(bytes(first)) == 16
    with pytest.raises(InvalidIdError):
        MessageId(b"short")


def test_manual_clock_only_moves_forward() -> None:
    clock = ManualClock(start=100.0)
    clock.advance(5)
    assert (clock.now(), clock.monotonic()) == (105.0, 5.0)
    with pytest.raises(CallerError):
        clock.advance(-1)


def test_system_clock_is_monotonic() -> None:
    clock = SystemClock()
    assert clock.monotonic() <= clock.monotonic()
    assert clock.now() > 1_600_000_000
