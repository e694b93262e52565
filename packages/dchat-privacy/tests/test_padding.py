"""Padding hides lengths within a bucket and has exactly one valid reading."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dchat_privacy import DEFAULT_BUCKETS, PaddingError, PaddingTooLargeError, pad, unpad


@given(st.binary(max_size=5000))
def test_roundtrip_lands_on_a_bucket(data: bytes) -> None:
    padded = pad(data)
    assert len(padded) in DEFAULT_BUCKETS
    assert unpad(padded) == data


def test_lengths_within_a_bucket_are_indistinguishable() -> None:
    assert len(pad(b"")) == len(pad(b"x" * 200)) == 256
    assert len(pad(b"x" * 253)) == 1024


def test_too_large_is_a_caller_error() -> None:
    with pytest.raises(PaddingTooLargeError):
        pad(b"x" * 65533)


@pytest.mark.parametrize(
    "blob",
    [
        b"\x00" * 100,  # not a bucket size
        (300).to_bytes(4, "big") + bytes(252),  # header longer than the blob
        (1).to_bytes(4, "big") + b"a" + b"\x01" + bytes(250),  # non-zero padding
    ],
)
def test_malformed_padding_is_rejected(blob: bytes) -> None:
    with pytest.raises(PaddingError):
        unpad(blob)


@given(st.binary(min_size=256, max_size=256))
def test_random_blobs_unpad_or_raise(blob: bytes) -> None:
    try:
        data = unpad(blob)
    except PaddingError:
        return
    assert pad(data) == blob
