"""dchat-testing: simulation, chaos harness, fixtures, strategies, conformance suites.

* :mod:`dchat_testing.sim`: the deterministic simulator (``uv run dchat-sim``).
* Fixtures: :func:`link_pair`, :func:`pump_link`, :func:`autojump_clock`, :func:`make_identity`,
  :func:`make_card`, :func:`make_signing_key`, :class:`MemoryMailboxStore`,
  :class:`MemoryPrekeyStore`.
* Hypothesis strategies for every wire message: :func:`relay_messages`,
  :func:`envelope_bytes`, :func:`sealed_envelopes`, :func:`contact_cards`,
  :func:`identities`, :func:`link_frames`, :func:`hostile_bytes`.
* Conformance: :class:`MailboxStoreConformance`, :func:`check_mailbox_store`,
  :class:`PrekeyStoreConformance`, :func:`check_prekey_store`.
* Real processes: :class:`ChaosHarness`; :func:`wait_until` /
  :func:`wait_until_async`, the one way tests wait for another process or task;
  test networks: :func:`running_validators`, :func:`currency_copies`,
  :func:`start_all`, :func:`certified`, :func:`toml_listen`.
* Two user agents trading mail by hand: :class:`AgentNode`, :func:`agent_pair`,
  :func:`deliver_mail`.
* Messaging engines over an in-memory relay: :class:`EngineNet`,
  :class:`EngineDevice`, :class:`MemoryRelay`, :class:`StubDirectory`,
  :func:`envelope_mailbox` (the ``net`` fixture).
* TLS: :func:`write_self_signed_tls` (a certificate and key for a test API).
* Seeded randomness: :class:`SeededRng` (bytes), :func:`seeded_random`.
* :mod:`dchat_testing.pytest_plugin`: the fixtures every package's tests share
  (loaded by the repository's ``conftest.py``).

Only tests import this package.
"""

from __future__ import annotations

from ._agents import AGENT_T0 as AGENT_T0
from ._agents import AgentNode as AgentNode
from ._agents import agent_pair as agent_pair
from ._agents import deliver_mail as deliver_mail
from ._chaos import ChaosHarness as ChaosHarness
from ._conformance import MailboxStoreConformance as MailboxStoreConformance
from ._conformance import PrekeyStoreConformance as PrekeyStoreConformance
from ._conformance import check_mailbox_store as check_mailbox_store
from ._conformance import check_prekey_store as check_prekey_store
from ._engine_net import ENGINE_RELAY as ENGINE_RELAY
from ._engine_net import EngineDevice as EngineDevice
from ._engine_net import EngineNet as EngineNet
from ._engine_net import MemoryRelay as MemoryRelay
from ._engine_net import StubDirectory as StubDirectory
from ._engine_net import envelope_mailbox as envelope_mailbox
from ._errors import ChaosError as ChaosError
from ._errors import DchatTestingError as DchatTestingError
from ._errors import SimulationError as SimulationError
from ._errors import WaitTimeoutError as WaitTimeoutError
from ._exports import check_export_surfaces as check_export_surfaces
from ._fixtures import AutojumpClock as AutojumpClock
from ._fixtures import LinkPair as LinkPair
from ._fixtures import autojump_clock as autojump_clock
from ._fixtures import link_pair as link_pair
from ._fixtures import make_card as make_card
from ._fixtures import make_identity as make_identity
from ._fixtures import make_signing_key as make_signing_key
from ._fixtures import pump_link as pump_link
from ._mailbox import MemoryEntry as MemoryEntry
from ._mailbox import MemoryMailboxStore as MemoryMailboxStore
from ._mailbox import MemoryPrekeyStore as MemoryPrekeyStore
from ._mailbox import entry_id_of as entry_id_of
from ._processes import certified as certified
from ._processes import currency_copies as currency_copies
from ._processes import running_validators as running_validators
from ._processes import start_all as start_all
from ._processes import toml_listen as toml_listen
from ._seeded import SeededRng as SeededRng
from ._seeded import seeded_random as seeded_random
from ._strategies import contact_cards as contact_cards
from ._strategies import envelope_bytes as envelope_bytes
from ._strategies import hostile_bytes as hostile_bytes
from ._strategies import identities as identities
from ._strategies import link_frames as link_frames
from ._strategies import relay_messages as relay_messages
from ._strategies import sealed_envelopes as sealed_envelopes
from ._tls import write_self_signed_tls as write_self_signed_tls
from ._waiting import holds_for as holds_for
from ._waiting import wait_stable as wait_stable
from ._waiting import wait_until as wait_until
from ._waiting import wait_until_async as wait_until_async

__all__ = (
    "AGENT_T0",
    "AgentNode",
    "AutojumpClock",
    "ChaosError",
    "ChaosHarness",
    "DchatTestingError",
    "ENGINE_RELAY",
    "EngineDevice",
    "EngineNet",
    "LinkPair",
    "MailboxStoreConformance",
    "MemoryEntry",
    "MemoryMailboxStore",
    "MemoryPrekeyStore",
    "MemoryRelay",
    "PrekeyStoreConformance",
    "SeededRng",
    "SimulationError",
    "StubDirectory",
    "WaitTimeoutError",
    "agent_pair",
    "autojump_clock",
    "certified",
    "check_export_surfaces",
    "check_mailbox_store",
    "check_prekey_store",
    "contact_cards",
    "currency_copies",
    "deliver_mail",
    "entry_id_of",
    "envelope_bytes",
    "envelope_mailbox",
    "holds_for",
    "hostile_bytes",
    "identities",
    "link_frames",
    "link_pair",
    "make_card",
    "make_identity",
    "make_signing_key",
    "pump_link",
    "relay_messages",
    "running_validators",
    "sealed_envelopes",
    "seeded_random",
    "start_all",
    "toml_listen",
    "wait_stable",
    "wait_until",
    "wait_until_async",
    "write_self_signed_tls",
)
