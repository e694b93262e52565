"""A messaging world: relays, users, their workload and the checkers.

Everything here is drawn from the simulation's seeded generators: node keys,
identities, clock skew, which user writes to whom and when, and the texts.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dchat_crypto import PrivateKey, SigningKey
from dchat_identity import Identity

from ._invariants import (
    PLAINTEXT_MARKER,
    ConversationOrder,
    ExactlyOnceDelivery,
    Ledger,
    NoAcknowledgedLoss,
    RelaysHoldNoPlaintext,
    SentMessage,
)
from ._node import NodeClock
from ._relay import RelayNode
from ._user import UserNode, UserParams

if TYPE_CHECKING:
    import random

    from ._simulation import Observation, Simulation

__all__ = ("MessagingWorld", "WorldSpec", "build_world")


@dataclass(frozen=True, slots=True)
class WorldSpec:
    """The shape of a messaging world.

    ``skew`` is the largest clock offset in seconds and ``drift`` the largest
    relative rate error of any node's clock. With ``registered``, every user's
    prekeys are at its relay before the run (otherwise each publishes them on
    its first mailbox fetch, and messages to it wait until then). ``homes`` is
    how many home relays each user has (user ``i`` on relays ``i, i+1, ...``
    modulo their number; more than one: multi-path delivery).
    """

    relays: int = 2
    users: int = 4
    relay_variant: str = "real"
    user_params: UserParams = field(default_factory=UserParams)
    skew: float = 30.0
    drift: float = 0.01
    registered: bool = False
    homes: int = 1


class MessagingWorld:
    """The nodes of one run plus the ledger the invariants check."""

    def __init__(self, sim: Simulation, relays: list[RelayNode], users: list[UserNode]) -> None:
        self.sim = sim
        self.relays = relays
        self.users = users
        self.ledger = Ledger()
        self._pending: dict[str, list[tuple[UserNode, str]]] = {}
        self._workload = sim.rng("workload")
        sim.add_invariant(ExactlyOnceDelivery(self.ledger, users))
        sim.add_invariant(NoAcknowledgedLoss(self.ledger))
        sim.add_invariant(ConversationOrder(self.ledger, users))
        sim.add_invariant(RelaysHoldNoPlaintext(self.ledger, relays))
        sim.on("up", self._on_up)

    def send(self, sender: UserNode, recipient: UserNode, text: str) -> None:
        """The sender's app sends ``text``; if its node is down, as soon as it is up."""
        if not sender.up:
            self._pending.setdefault(sender.name, []).append((recipient, text))
            return
        mid = sender.submit(recipient.card, text).hex()
        sent = SentMessage(sender.name, str(sender.card.identity_id), recipient.name, text)
        self.ledger.record_sent(mid, sent)

    def _on_up(self, obs: Observation) -> None:
        waiting = self._pending.pop(obs.node, [])
        sender = next((u for u in self.users if u.name == obs.node), None)
        for recipient, text in waiting:
            assert sender is not None
            self.sim.at(self.sim.now, functools.partial(self.send, sender, recipient, text))

    def schedule_messages(
        self, count: int, start: float, end: float, *, to: UserNode | None = None
    ) -> None:
        """``count`` messages at random times between random users (or all ``to`` one)."""
        rng = self._workload
        for number in range(count):
            if to is None:
                sender, recipient = rng.sample(self.users, 2)
            else:
                sender = rng.choice([u for u in self.users if u is not to])
                recipient = to
            when = rng.uniform(start, end)
            tag = rng.randbytes(8).hex()
            text = f"{PLAINTEXT_MARKER}{sender.name}->{recipient.name} #{number} {tag}"
            self.sim.at(when, functools.partial(self.send, sender, recipient, text))

    def quiescent(self) -> bool:
        """All sent messages delivered, no outbox or mailbox holds anything."""
        return (
            self.ledger.settled()
            and not any(self._pending.values())
            and all(not user.durable.store.outbox for user in self.users)
            and all(relay.store.count() == 0 for relay in self.relays)
        )

    def random_node(self, rng: random.Random, *, relays: bool = True, users: bool = True) -> str:
        """The name of a random relay and/or user."""
        names = [r.name for r in self.relays if relays] + [u.name for u in self.users if users]
        return rng.choice(names)


def build_world(
    sim: Simulation, spec: WorldSpec, world: type[MessagingWorld] = MessagingWorld
) -> MessagingWorld:
    """Create relays and users (keys, skewed clocks, cards) and the checkers (``world``'s)."""
    keys = sim.rng("identities")
    skews = sim.rng("clocks")

    def clock() -> NodeClock:
        offset = skews.uniform(-spec.skew, spec.skew)
        return NodeClock(sim, offset=offset, rate=1.0 + skews.uniform(-spec.drift, spec.drift))

    relays = []
    for index in range(spec.relays):
        key = SigningKey.from_bytes(keys.randbytes(32))
        relays.append(
            RelayNode(sim, f"relay-{index}", clock(), node_key=key, variant=spec.relay_variant)
        )
    users = []
    for index in range(spec.users):
        identity = Identity(
            SigningKey.from_bytes(keys.randbytes(32)),
            PrivateKey.from_bytes(keys.randbytes(32)),
            SigningKey.from_bytes(keys.randbytes(32)),
        )
        homes = [relays[(index + j) % len(relays)] for j in range(spec.homes)]
        home = homes[0]
        users.append(
            UserNode(
                sim,
                f"user-{index}",
                clock(),
                identity=identity,
                home_relay=home.name,
                home_relay_node=home.node_id,
                params=spec.user_params,
                more_relays=[(relay.name, relay.node_id) for relay in homes[1:]],
            )
        )
    if spec.registered:
        for index, user in enumerate(users):
            for j in range(spec.homes):
                user.register(relays[(index + j) % len(relays)])
    made = world(sim, relays, users)
    for node in [*relays, *users]:
        sim.add_node(node)
    return made
