"""Same seed, same trace, byte for byte; different seeds, different traces.

The trace holds events, times and segment sizes (not ciphertext bytes, which
the messaging engine's cryptography makes differ between runs).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from dchat_crypto import PrivateKey, SigningKey
from dchat_testing import SimulationError
from dchat_testing.sim import SCENARIOS, ScenarioOptions, run_scenario, seeded_key_generation

SNIPPET = (
    "from dchat_testing.sim import run_scenario;"
    "print(run_scenario('relay-crash-during-delivery', 11).trace_digest)"
)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_same_seed_replays_byte_for_byte(name: str) -> None:
    options = ScenarioOptions(duration=10.0)
    first, second = run_scenario(name, 5, options), run_scenario(name, 5, options)
    assert first.trace_digest == second.trace_digest
    assert first.trace_tail == second.trace_tail
    assert first.events == second.events
    other = run_scenario(name, 6, options)
    assert other.trace_digest != first.trace_digest


def test_traces_do_not_depend_on_the_process() -> None:
    # Hash randomisation changes set and dict-of-str iteration between
    # processes; a trace that depended on it would differ here.
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run(
            [sys.executable, "-c", SNIPPET], env=env, capture_output=True, text=True, check=True
        )
        digests.add(out.stdout.strip())
    digests.add(run_scenario("relay-crash-during-delivery", 11).trace_digest)
    assert len(digests) == 1


def test_the_trace_covers_the_bytes_on_the_wire() -> None:
    result = run_scenario("partition-and-heal", 3, ScenarioOptions(duration=5.0))
    assert any(" seg>" in line for line in result.trace_tail)


def test_seeded_key_generation_is_scoped_and_not_reentrant() -> None:
    import random

    originals = (PrivateKey.generate, SigningKey.generate)
    with seeded_key_generation(random.Random(1)):
        first = (PrivateKey.generate().public_key, SigningKey.generate().public_key)
        with pytest.raises(SimulationError), seeded_key_generation(random.Random(2)):
            pass
    with seeded_key_generation(random.Random(1)):
        again = (PrivateKey.generate().public_key, SigningKey.generate().public_key)
    assert first == again
    assert (PrivateKey.generate, SigningKey.generate) == originals
    assert PrivateKey.generate().public_key != first[0]
