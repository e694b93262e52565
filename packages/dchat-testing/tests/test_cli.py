"""The dchat-sim command line."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dchat_testing.cli import main
from dchat_testing.sim import SCENARIOS


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out), out.getvalue()


def test_list_names_every_scenario() -> None:
    status, text = run("--list")
    assert status == 0
    assert [line.split(":")[0] for line in text.splitlines()] == list(SCENARIOS)


def test_a_passing_run_prints_a_summary_per_scenario() -> None:
    status, text = run("--scenario", "partition-and-heal", "--seeds", "2", "--duration", "8")
    assert status == 0
    [summary] = text.splitlines()
    assert summary.split()[:5] == ["partition-and-heal", "seeds", "2", "failures", "0"]
    assert "simulated" in summary
    assert "wall" in summary


def test_a_failing_run_prints_one_replay_line_per_failing_seed() -> None:
    status, text = run(
        "--scenario", "relay-crash-during-delivery", "--seed", "7", "--seeds", "2",
        "--relay", "delete-on-fetch",
    )  # fmt: skip
    assert status == 1
    fails = [line for line in text.splitlines() if line.startswith("FAIL")]
    assert len(fails) == 2
    assert fails[0].endswith(
        "replay: uv run dchat-sim --scenario relay-crash-during-delivery --seed 7 "
        "--relay delete-on-fetch"
    )
    assert "failures    2" in text.splitlines()[-1]


def test_bad_arguments_are_refused() -> None:
    assert run("--seeds", "0")[0] == 2
    with pytest.raises(SystemExit):
        run("--scenario", "no-such-scenario")


@pytest.mark.slow
def test_the_console_script_runs() -> None:
    script = Path(sys.executable).with_name("dchat-sim")
    out = subprocess.run(
        [str(script), "--scenario", "message-storm", "--duration", "1"],
        capture_output=True, text=True, timeout=120, env=dict(os.environ),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("message-storm")
