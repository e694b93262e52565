"""Onion guards: the few relays every onion route of a node starts at, pinned for weeks.

Theory of operation. The first hop of an onion route sees the sender's
address. Drawn fresh per route, the first hop is, sooner or later, a relay of
whoever runs many of them (the predecessor attack: an adversary notes who
hands it onions and, over many routes, who keeps writing). A node therefore
pins a small *guard set* (:attr:`GuardPolicy.count`, 2 by default) drawn from
the :class:`~dchat_chain.lowlevel.OnionDirectory` with the route rules (no two
guards of one operator group or network tag), and starts every route it
sends at one of them: an adversary gets the node as a predecessor only if it
already holds a guard, and then at most for that guard's lifetime.

* A guard's lifetime is drawn when it is chosen, uniformly between
  :attr:`GuardPolicy.min_life` and :attr:`GuardPolicy.max_life` (30-60 days):
  the jitter keeps a node's guard changes from falling on one schedule.
* A guard is replaced when its lifetime ends, when it leaves the directory
  (its node id is no longer listed) or when it has been unreachable for
  :attr:`GuardPolicy.down_limit` (the caller marks answers with
  :meth:`GuardedRoutes.mark`). A replacement is never a guard just dropped.
* A route starts at a reachable guard that does not clash with the mailbox
  relay (the last hop), in random order; the middle hops are drawn fresh.
  When no guard fits the mailbox relay, the route is refused
  (:class:`~dchat_chain.lowlevel.NoDiverseRouteError`), never started at a
  non-guard: that would hand the adversary the very exposure guards remove.
* Reply blocks a node gives away (protocol §45) are entered by the peer, not
  by the node: their routes (:meth:`GuardedRoutes.free_route`) do not start at
  a guard, which would also tell every peer the node's guards.

Everything is a pure function of the directory, the stored guards, ``now``
and an ``rng`` (the clock is :attr:`GuardedRoutes.now`), so rotation is
deterministic given the clock and a seeded rng.
"""

from __future__ import annotations

import json
import random as _random
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final

from dchat_core import RelayAddress

from ._errors import ChainArgumentError
from ._relay_choice import _search

if TYPE_CHECKING:
    import random
    from collections.abc import Callable

    from ._onion_routes import OnionDirectory
    from ._relay_choice import _Candidate

__all__ = ("GUARDS_KEY", "Guard", "GuardPolicy", "GuardedRoutes", "OnionGuardsError", "pick_guards")

GUARDS_KEY: Final = "onion.guards"
"""The settings key a user node keeps its guards under."""

_DAY: Final = 86400.0
_MAX_GUARDS: Final = 8


class OnionGuardsError(ChainArgumentError):
    """Stored onion guards are malformed."""


@dataclass(frozen=True, slots=True)
class GuardPolicy:
    """How many guards, how long they live, how long one may stay unreachable."""

    count: int = 2
    min_life: float = 30 * _DAY
    max_life: float = 60 * _DAY
    down_limit: float = _DAY

    def __post_init__(self) -> None:
        if not 1 <= self.count <= _MAX_GUARDS or not 0 <= self.min_life <= self.max_life:
            raise ChainArgumentError("guards: count 1..8, 0 <= min_life <= max_life")


@dataclass(frozen=True, slots=True)
class Guard:
    """A pinned first hop: its address, when chosen, when it retires, when it went quiet."""

    address: str
    since: float
    until: float
    down_since: float | None = None

    def row(self) -> dict[str, Any]:
        """As the node's status shows it."""
        return {"address": self.address, "since": self.since, "until": self.until} | {
            "down_since": self.down_since
        }


def _dropped(directory: OnionDirectory, guard: Guard, policy: GuardPolicy, now: float) -> bool:
    down = guard.down_since is not None and now - guard.down_since >= policy.down_limit
    return now >= guard.until or down or directory._index_of(guard.address) is None


def pick_guards(
    directory: OnionDirectory,
    guards: tuple[Guard, ...],
    policy: GuardPolicy,
    now: float,
    rng: random.Random,
) -> tuple[Guard, ...]:
    """The guards to use now: ``guards`` itself when none changes, else the new set.

    Kept guards come first (pinning order); gaps are filled with relays that
    clash with no guard, as many as the directory allows (maybe fewer than
    :attr:`GuardPolicy.count`, maybe none).
    """
    kept: list[tuple[Guard, _Candidate]] = []
    for guard in guards:
        if _dropped(directory, guard, policy, now):
            continue
        i = directory._index_of(guard.address)
        assert i is not None
        candidate = directory._candidate(i)
        if not any(candidate.clashes(c) for _, c in kept) and len(kept) < policy.count:
            kept.append((replace(guard, address=directory.candidates[i][0]), candidate))
    taken = {directory._index_of(g.address) for g in guards}
    pool = [directory._candidate(i) for i in range(len(directory)) if i not in taken]
    rng.shuffle(pool)
    fixed = [c for _, c in kept]
    found: list[_Candidate] = []
    for need in range(policy.count - len(kept), 0, -1):
        found = _search(fixed, pool, need) or []
        if found:
            break
    chosen = [g for g, _ in kept]
    for candidate in found:
        life = rng.uniform(policy.min_life, policy.max_life)
        chosen.append(Guard(str(candidate.listing.identity), now, now + life))
    return guards if tuple(chosen) == guards else tuple(chosen)


class GuardedRoutes:
    """A node's onion routes from ``directory``, each starting at one of its guards.

    Args:
        directory: Where hops come from.
        now: The wall clock (guards' lifetimes are in its seconds).
        policy: Guard count and lifetimes.
        rng: Picks guards when :meth:`refresh` is given none (a system RNG by default).
    """

    KEY: Final = GUARDS_KEY
    """The settings key a user node keeps its guards under."""

    def __init__(
        self,
        directory: OnionDirectory,
        now: Callable[[], float],
        policy: GuardPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.directory = directory
        self.now = now
        self.policy = policy or GuardPolicy()
        self._rng = rng or _random.SystemRandom()
        self.guards: tuple[Guard, ...] = ()
        self.changed = False
        """Whether :attr:`guards` changed since :meth:`to_json` was last stored."""

    def refresh(self, rng: random.Random | None = None) -> tuple[Guard, ...]:
        """Drop the guards due to go, fill the gaps; the guards now."""
        new = pick_guards(self.directory, self.guards, self.policy, self.now(), rng or self._rng)
        if new is not self.guards:
            self.guards, self.changed = new, True
        return new

    def route(self, last: RelayAddress, rng: random.Random) -> list[RelayAddress]:
        """A 3-hop route to ``last`` that starts at a guard (reachable ones first).

        Raises:
            NoDiverseRouteError: no guard fits ``last``, or no middle hop does.
            SingleOperatorViewError: the directory has one operator.
        """
        guards = list(self.refresh(rng))
        rng.shuffle(guards)
        guards.sort(key=lambda g: g.down_since is not None)  # stable: random among equals
        route = self.directory.route(str(last), rng, first=[g.address for g in guards])
        return [*(RelayAddress.parse(a) for a in route[:-1]), last]

    def free_route(self, last: RelayAddress, rng: random.Random) -> list[RelayAddress]:
        """A route to ``last`` whose first hop is drawn fresh (for reply blocks given away)."""
        return self.directory.route_addresses(last, rng)

    def mark(self, relay: RelayAddress, reachable: bool) -> None:
        """Note whether the guard ``relay`` answered (other relays are ignored)."""
        node = None if relay.node is None else str(relay.node)
        marked = []
        for guard in self.guards:
            if node is not None and guard.address.startswith(node + "@"):
                since = None if reachable else (guard.down_since or self.now())
                guard = replace(guard, down_since=since)
            marked.append(guard)
        if tuple(marked) != self.guards:
            self.guards, self.changed = tuple(marked), True

    def rows(self) -> list[dict[str, Any]]:
        """The guards as the node's status shows them."""
        return [g.row() for g in self.guards]

    def to_json(self) -> str:
        """The stored form (clears :attr:`changed`)."""
        self.changed = False
        return json.dumps({"v": 1, "guards": self.rows()})

    def resume(self, text: str | bytes | None) -> bool:
        """At start: :meth:`restore` the stored guards, then :meth:`refresh`. False when
        the stored ones were unreadable (new guards are picked; the caller says so)."""
        readable = True
        try:
            self.restore(text)
        except OnionGuardsError:
            self.guards, readable = (), False
        self.refresh()
        return readable

    def restore(self, text: str | bytes | None) -> None:
        """Take back the guards :meth:`to_json` stored (nothing stored: none yet).

        Raises:
            OnionGuardsError: not a stored guard set.
        """
        if text is None:
            return
        try:
            doc = json.loads(text)
            if not isinstance(doc, dict) or doc.get("v") != 1:
                raise ValueError("not a version 1 document")
            rows = doc["guards"]
            if not isinstance(rows, list) or len(rows) > _MAX_GUARDS:
                raise ValueError("guards must be a short list")
            self.guards = tuple(_guard(row) for row in rows)
        except (ValueError, KeyError, TypeError) as exc:
            raise OnionGuardsError(f"stored onion guards are malformed: {exc}") from None


def _guard(row: Any) -> Guard:
    address, since, until, down = row["address"], row["since"], row["until"], row["down_since"]
    if not isinstance(address, str) or len(address) > 300:
        raise TypeError("an address is NODEID@HOST:PORT")
    RelayAddress.parse(address)
    times = [since, until] + ([] if down is None else [down])
    if not all(isinstance(t, int | float) and not isinstance(t, bool) for t in times):
        raise TypeError("times are numbers")
    return Guard(address, float(since), float(until), None if down is None else float(down))
