"""The lifecycle schedule: which policy each role sweeps with, and when."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dchat_storage import InvalidArgumentError, SweepReport, SweepSchedule

DAY = 86400.0


def test_each_role_has_its_policy() -> None:
    relay = SweepSchedule.for_role("relay").policy
    assert (relay.mailbox_ttl, relay.attachment_grace) == (30 * DAY, DAY)
    for role in ("user", "validator"):
        policy = SweepSchedule.for_role(role).policy
        assert (policy.mailbox_ttl, policy.attachment_grace) == (None, DAY)
    # A user node's messaging layer expires disappearing messages (with their notes).
    assert [SweepSchedule.for_role(r).policy.disappearing for r in ("user", "relay")] == [
        False,
        True,
    ]


def test_the_event_log_keeps_its_ttl() -> None:
    assert SweepSchedule.for_role("user").policy.event_ttl == 30 * DAY
    assert SweepSchedule.for_role("user", event_ttl=3600.0).policy.event_ttl == 3600.0
    assert SweepSchedule.for_role("user", event_ttl=None).policy.event_ttl is None
    for bad in (0.0, -1.0, math.nan):
        with pytest.raises(InvalidArgumentError):
            SweepSchedule.for_role("user", event_ttl=bad)


@given(st.text(max_size=20).filter(lambda role: role not in ("user", "relay", "validator")))
def test_an_unknown_role_is_refused(role: str) -> None:
    with pytest.raises(InvalidArgumentError):
        SweepSchedule.for_role(role)


@pytest.mark.parametrize("interval", [0.0, -1.0, math.nan, -math.inf])
def test_a_bad_interval_is_refused(interval: float) -> None:
    with pytest.raises(InvalidArgumentError):
        SweepSchedule.for_role("user", interval=interval)


def test_first_sweep_at_once_then_every_interval() -> None:
    schedule = SweepSchedule.for_role("user", interval=60.0)
    assert schedule.wait(1000.0) == 0.0
    schedule.done(1000.0, SweepReport(disappeared=2, blobs=1))
    assert schedule.wait(1000.0) == 60.0
    assert schedule.wait(1059.0) == 1.0
    assert schedule.wait(2000.0) == 0.0  # overdue: at once, never negative
    assert (schedule.sweeps, schedule.deleted) == (1, 3)


def test_a_failed_sweep_is_retried_at_the_next_tick_and_not_counted() -> None:
    schedule = SweepSchedule.for_role("relay", interval=60.0)
    schedule.done(5.0, None)
    assert (schedule.sweeps, schedule.deleted, schedule.wait(5.0)) == (0, 0, 60.0)


def test_report_counts_sum_to_total() -> None:
    report = SweepReport(
        disappeared=1, retention=2, mailbox_entries=3, attachments=4, blobs=5, events=6
    )
    assert report.total == sum(report.counts().values()) == 21
    assert set(report.counts()) == {
        "disappeared", "retention", "mailbox_entries", "attachments", "blobs", "events"
    }  # fmt: skip
