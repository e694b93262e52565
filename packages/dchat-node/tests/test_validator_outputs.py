"""Which consensus checkpoints the validator shell may skip writing."""

from __future__ import annotations

from dchat_chain import Checkpoint, ConsensusOutput, Persist, ScheduleTimeout, SyncNeeded
from dchat_chain.lowlevel import Step
from dchat_node._validator_service import _superseded


def persist(round_: int) -> Persist:
    return Persist(Checkpoint(height=1, round=round_, step=Step.PROPOSE))


def test_a_checkpoint_replaced_before_anything_leaves_is_skipped() -> None:
    outputs: list[ConsensusOutput] = [persist(0), ScheduleTimeout(5), persist(1)]
    assert [_superseded(outputs, i) for i in (0, 2)] == [True, False]


def test_a_checkpoint_followed_by_another_output_is_written() -> None:
    outputs: list[ConsensusOutput] = [persist(0), SyncNeeded(3), persist(1)]
    assert not _superseded(outputs, 0)
