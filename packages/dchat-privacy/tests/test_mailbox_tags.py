"""Rotating mailbox tags: derivation, the watch schedule, and refusals of bad input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dchat_privacy.lowlevel import (
    MAX_CATCH_UP,
    MAX_TAG_EPOCH,
    TAG_EPOCH,
    TAG_SECRET_SIZE,
    TagInputError,
    TagSchedule,
    tag_seed,
    tag_token,
)

A, B = b"a" * TAG_SECRET_SIZE, b"b" * TAG_SECRET_SIZE


def test_tags_differ_across_epochs_and_secrets_and_repeat_for_the_same_pair() -> None:
    seeds = {tag_seed(s, e) for s in (A, B) for e in range(100)}
    assert len(seeds) == 200
    assert tag_seed(A, 7) == tag_seed(A, 7)
    assert all(len(seed) == 32 for seed in seeds)


def test_a_known_answer_pins_the_derivation() -> None:
    """HKDF-SHA256(secret, salt none, info "dchat-mailbox-tag-v1" || u64be(epoch)), 32 bytes."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    info = b"dchat-mailbox-tag-v1" + (493_000).to_bytes(8, "big")
    expected = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(A)
    assert tag_seed(A, 493_000) == expected
    # The example of docs/protocol.md section 38.
    pinned = "ade953397918c7eae7a35c6d3b3d3fcf1544933eb5b07ad3e2846164f680f458"
    assert tag_seed(bytes(range(32)), 493_000).hex() == pinned


@pytest.mark.parametrize(
    ("secret", "epoch"),
    [(b"short", 1), (A + b"x", 1), (A, -1), (A, 2**64), (A, True), (A, 1.0), ("a" * 32, 1)],
)
def test_bad_secrets_and_epochs_are_typed_errors(secret: object, epoch: object) -> None:
    with pytest.raises(TagInputError):
        tag_seed(secret, epoch)  # type: ignore[arg-type]


@given(
    now=st.floats(min_value=2 * MAX_TAG_EPOCH, max_value=4e9, allow_nan=False),
    skew=st.floats(min_value=-1.0, max_value=1.0),
    seconds=st.sampled_from([1, 3, 60, TAG_EPOCH, MAX_TAG_EPOCH]),
)
def test_a_sender_skewed_by_up_to_one_epoch_writes_to_a_watched_epoch(
    now: float, skew: float, seconds: int
) -> None:
    schedule = TagSchedule(seconds)
    sender = schedule.epoch(now + skew * seconds)
    assert sender in schedule.live(now)
    assert len(schedule.live(now)) == 3


def test_two_epochs_off_is_outside_the_live_window_but_caught_up_later() -> None:
    schedule = TagSchedule(10)
    now = 1_000.0  # epoch 100
    assert schedule.live(now) == range(99, 102)
    assert schedule.epoch(now - 20) not in schedule.live(now)  # 98
    assert schedule.epoch(now + 20) not in schedule.live(now)  # 102: too far ahead
    assert 98 in schedule.catch_up(now, drained_before=90)
    assert schedule.next_change(now) == 1010.0
    assert schedule.next_change(1009.5) == 1010.0


def test_catch_up_covers_the_missed_epochs_bounded_by_retention() -> None:
    schedule = TagSchedule(TAG_EPOCH)
    now = 2_000.5 * TAG_EPOCH  # epoch 2000
    assert schedule.catch_up(now, drained_before=1990) == range(1990, 1999)
    assert schedule.catch_up(now, drained_before=1999) == range(1999, 1999)  # nothing missed
    assert schedule.catch_up(now, drained_before=5000) == range(5000, 5000)  # empty, not negative
    far = schedule.catch_up(now, drained_before=0)
    assert far.stop == 1999
    assert len(far) == MAX_CATCH_UP // TAG_EPOCH  # 30 days of hours
    assert TagSchedule(TAG_EPOCH, max_catch_up=0).catch_up(now, 0) == range(1999, 1999)


@pytest.mark.parametrize("seconds", [0, -5, MAX_TAG_EPOCH + 1, True, 1.5])
def test_bad_epoch_lengths_are_refused(seconds: object) -> None:
    with pytest.raises(TagInputError):
        TagSchedule(seconds)  # type: ignore[arg-type]


@pytest.mark.parametrize("now", [float("nan"), float("inf"), -1.0])
def test_bad_times_are_refused(now: float) -> None:
    with pytest.raises(TagInputError):
        TagSchedule().epoch(now)


def test_tag_tokens_differ_per_epoch_and_from_the_seed() -> None:
    tokens = {tag_token(A, e) for e in range(50)}
    assert len(tokens) == 50
    assert all(len(t) == 16 for t in tokens)
    assert tag_token(A, 3) != tag_seed(A, 3)[:16]
    with pytest.raises(TagInputError):
        tag_token(b"x", 3)


@given(
    now=st.floats(min_value=20 * 86400, max_value=2**40),
    behind=st.integers(min_value=2, max_value=16),
)
def test_the_skew_sweep_reaches_a_sender_up_to_sixteen_hours_behind(
    now: float, behind: int
) -> None:
    schedule = TagSchedule(TAG_EPOCH)
    band, due = schedule.sweep(now)
    sender = schedule.epoch(now - behind * TAG_EPOCH)
    assert sender in band or sender in schedule.live(now)
    assert len(band) == 16
    assert band.stop == schedule.live(now).start  # never the live window twice
    assert due % TAG_EPOCH == 0  # at an epoch boundary, where the shell re-reads the tags
    assert 3 * TAG_EPOCH < due - now <= 4 * TAG_EPOCH


def test_the_skew_band_never_reaches_past_retention_or_zero() -> None:
    assert TagSchedule(TAG_EPOCH, max_catch_up=2 * TAG_EPOCH).sweep(1e7)[0] == range(2774, 2776)
    assert TagSchedule(10).sweep(25.0)[0] == range(0, 1)
    with pytest.raises(TagInputError):
        TagSchedule(skew_band=-1)
    with pytest.raises(TagInputError):
        TagSchedule(skew_sweep=0)
