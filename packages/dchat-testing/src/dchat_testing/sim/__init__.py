"""dchat_testing.sim: deterministic simulation of dchat's protocols.

Real protocol objects (Noise links, the relay server and client, sealed
envelopes, the chain's consensus engine) run over a simulated network and
virtual clocks; every random choice comes from the seed, so a seed replays a
run byte for byte. Start with
:func:`run_scenario`, or build a :class:`Simulation` by hand.
"""

from __future__ import annotations

from ._chain import ChainSpec as ChainSpec
from ._chain import ChainWorld as ChainWorld
from ._chain import EquivocationEvidence as EquivocationEvidence
from ._chain import OneBlockPerHeight as OneBlockPerHeight
from ._chain import ProgressAfterHealing as ProgressAfterHealing
from ._chain import ValidatorNode as ValidatorNode
from ._chain import build_chain_world as build_chain_world
from ._determinism import seeded_key_generation as seeded_key_generation
from ._invariants import ConversationOrder as ConversationOrder
from ._invariants import ExactlyOnceDelivery as ExactlyOnceDelivery
from ._invariants import Inbox as Inbox
from ._invariants import Ledger as Ledger
from ._invariants import NoAcknowledgedLoss as NoAcknowledgedLoss
from ._invariants import RelaysHoldNoPlaintext as RelaysHoldNoPlaintext
from ._invariants import SentMessage as SentMessage
from ._loop import EventLoop as EventLoop
from ._loop import Timer as Timer
from ._loop import Trace as Trace
from ._network import Endpoint as Endpoint
from ._network import LinkProfile as LinkProfile
from ._network import Network as Network
from ._network import NetworkStats as NetworkStats
from ._node import LinkHandler as LinkHandler
from ._node import NodeClock as NodeClock
from ._node import SimLink as SimLink
from ._node import SimNode as SimNode
from ._relay import RELAY_VARIANTS as RELAY_VARIANTS
from ._relay import DeleteOnFetchRelayServer as DeleteOnFetchRelayServer
from ._relay import RelayNode as RelayNode
from ._runner import SimResult as SimResult
from ._runner import repro_command as repro_command
from ._runner import run_scenario as run_scenario
from ._runner import run_seeds as run_seeds
from ._scenarios import SCENARIOS as SCENARIOS
from ._scenarios import Scenario as Scenario
from ._scenarios import ScenarioOptions as ScenarioOptions
from ._scenarios import ScenarioPlan as ScenarioPlan
from ._scenarios import register_scenario as register_scenario
from ._simulation import Invariant as Invariant
from ._simulation import Observation as Observation
from ._simulation import Simulation as Simulation
from ._simulation import Violation as Violation
from ._user import UserNode as UserNode
from ._user import UserParams as UserParams
from ._world import MessagingWorld as MessagingWorld
from ._world import WorldSpec as WorldSpec
from ._world import build_world as build_world

__all__ = (
    "ChainSpec",
    "ChainWorld",
    "ConversationOrder",
    "DeleteOnFetchRelayServer",
    "Endpoint",
    "EquivocationEvidence",
    "EventLoop",
    "ExactlyOnceDelivery",
    "Inbox",
    "Invariant",
    "Ledger",
    "LinkHandler",
    "LinkProfile",
    "MessagingWorld",
    "Network",
    "NetworkStats",
    "NoAcknowledgedLoss",
    "NodeClock",
    "Observation",
    "OneBlockPerHeight",
    "ProgressAfterHealing",
    "RELAY_VARIANTS",
    "RelayNode",
    "RelaysHoldNoPlaintext",
    "SCENARIOS",
    "Scenario",
    "ScenarioOptions",
    "ScenarioPlan",
    "SentMessage",
    "SimLink",
    "SimNode",
    "SimResult",
    "Simulation",
    "Timer",
    "Trace",
    "UserNode",
    "UserParams",
    "ValidatorNode",
    "Violation",
    "WorldSpec",
    "build_chain_world",
    "build_world",
    "register_scenario",
    "repro_command",
    "run_scenario",
    "run_seeds",
    "seeded_key_generation",
)
