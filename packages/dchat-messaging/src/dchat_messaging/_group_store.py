"""The stored state of a node's groups: records, sender keys, history, waiting controls.

Everything is sealed state of the node's store (``StateStore``), canonical CBOR:

* ``group.index``: the group ids, oldest first;
* ``group.<id hex>``: a :class:`GroupRecord` ``{"st": state, ["pv": previous
  state], ["up": the update that made "st"], ["own": 1 when we signed it],
  "status": "active" | "invited" | "left", ["held": [updates known but not
  applied: ahead of "st", or on another branch]], ["base": the oldest state
  kept, "ch": [the updates from "base" to "st"]], ["mine": [hashes of the
  updates we signed]]}`` (see :mod:`._group_branches` for how a branch is chosen);
* ``group.keys.<id hex>``: :class:`GroupKeys` ``{["own": this device's
  chain], "q": its message number, "ph": its last message hash, "sh":
  [identities that hold our chain], "p": [[identity, device], ...]}`` (the
  member devices whose chains we hold; a chain map as
  :meth:`SenderChain.to_map`, the signing key only in ours);
* ``group.chains.<id hex>.<identity hex>.<device hex>``: that device's
  chains (the newest ``MAX_EPOCHS`` epochs), each its own entry so that a message
  received rewrites one device's chains, not the whole group's;
* ``group.log.<id hex>``: the newest :data:`MAX_LOG` messages, ``[message id
  hex, sender, ms, text, "in" | "out", seq, message hash hex]`` (rows from
  before anchoring lack the hash);
* ``group.anchor.<id hex>``: the group's anchored order (:mod:`._anchor_book`);
* ``group.waiting``: received group controls that came before what they need,
  ``[kind, sender, device, data]``, at most :data:`MAX_WAITING`.

It also reads a group message's plaintext ``{"mid": id(16), "ts": ms, "text": str}``.
Records are decoded once and kept by digest (the newest :data:`_CACHED`): a
group of 1,000 members is two states of 270 kB with 1,000 cards each, which
every message sent or received would otherwise parse again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Final

from dchat_core import (
    DchatError,
    DecodeError,
    DecodeLimits,
    Fields,
    MessageId,
    canonical_decode,
    canonical_encode,
)

from ._content import MAX_TEXT
from ._errors import GroupError, RequestError
from ._groups import GroupState, GroupUpdate
from ._sender_keys import SenderChain

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._store import StateStore

__all__ = (
    "MAX_LOG",
    "MAX_WAITING",
    "GroupKeys",
    "GroupRecord",
    "GroupStore",
    "read_plaintext",
)

MAX_LOG: Final = 500
"""Messages kept per group (the newest)."""
MAX_WAITING: Final = 256
"""Received group controls kept waiting for what they need."""
_LIMITS: Final = DecodeLimits(max_size=32 << 20, max_depth=6, max_items=1 << 20)
_CACHED: Final = 8
_INDEX: Final = "group.index"
_WAITING: Final = "group.waiting"


@dataclass(slots=True)
class GroupRecord:
    """One group as this node holds it."""

    state: GroupState
    status: str = "active"
    prev: GroupState | None = None
    last: GroupUpdate | None = None
    own: bool = False
    held: list[bytes] = field(default_factory=list)
    base: GroupState | None = None
    chain: list[GroupUpdate] = field(default_factory=list)
    mine: list[bytes] = field(default_factory=list)

    def history(self) -> tuple[GroupState, list[GroupUpdate]]:
        """The oldest state kept and the updates applied on it since (to ``state``)."""
        if self.base is not None:
            return self.base, list(self.chain)
        if self.prev is not None and self.last is not None:  # a record from before "base"
            return self.prev, [self.last]
        return self.state, []

    def encode(self) -> bytes:
        value: dict[str, object] = {"st": self.state.to_bytes(), "status": self.status}
        if self.prev is not None:
            value["pv"] = self.prev.to_bytes()
        if self.last is not None:
            value["up"] = self.last.to_bytes()
        if self.own:
            value["own"] = 1
        if self.held:
            value["held"] = list(self.held)
        if self.base is not None:
            value["base"] = self.base.to_bytes()
            value["ch"] = [u.to_bytes() for u in self.chain]
        if self.mine:
            value["mine"] = list(self.mine)
        return canonical_encode(value)

    @classmethod
    def decode(cls, data: bytes) -> GroupRecord:
        f = Fields(
            canonical_decode(data, _LIMITS),
            "group",
            frozenset({"st", "status", "pv", "up", "own", "held", "base", "ch", "mine"}),
        )
        return cls(
            GroupState.from_bytes(f.get_bytes("st")), f.get_str("status", max_len=8),
            GroupState.from_bytes(f.get_bytes("pv")) if f.has("pv") else None,
            GroupUpdate.from_bytes(f.get_bytes("up")) if f.has("up") else None,
            f.has("own"), [bytes(b) for b in f.get_list("held")] if f.has("held") else [],
            GroupState.from_bytes(f.get_bytes("base")) if f.has("base") else None,
            [GroupUpdate.from_bytes(b) for b in f.get_list("ch")] if f.has("ch") else [],
            [bytes(b) for b in f.get_list("mine")] if f.has("mine") else [],
        )  # fmt: skip


@dataclass(slots=True)
class GroupKeys:
    """This device's sender chain in one group, and the chains of the other member devices."""

    own: SenderChain | None = None
    seq: int = 0
    prev_hash: bytes = bytes(32)
    shared: set[bytes] = field(default_factory=set)
    peers: set[tuple[bytes, bytes]] = field(default_factory=set)
    """The member devices whose chains we hold (:meth:`GroupStore.chains`)."""
    inline: dict[tuple[bytes, bytes], list[SenderChain]] = field(default_factory=dict)
    """Chains stored inside the keys by older versions (moved out on reading)."""

    def encode(self) -> bytes:
        value: dict[str, object] = {
            "q": self.seq, "ph": self.prev_hash, "sh": sorted(self.shared),
            "p": [[i, d] for i, d in sorted(self.peers)],
        }  # fmt: skip
        if self.own is not None:
            value["own"] = self.own.to_map()
        return canonical_encode(value)

    @classmethod
    def decode(cls, data: bytes) -> GroupKeys:
        f = Fields(
            canonical_decode(data, _LIMITS), "group keys", frozenset({"own", "q", "ph", "sh", "p"})
        )
        rows = f.get_list("p")
        inline = {
            (r[0], r[1]): [SenderChain.from_map(c) for c in r[2]] for r in rows if len(r) == 3
        }
        peers = {(r[0], r[1]) for r in rows}
        own = SenderChain.from_map(f.raw("own")) if f.has("own") else None
        shared = set(f.get_list("sh"))
        return cls(own, f.get_int("q"), f.get_bytes("ph", size=32), shared, peers, inline)


class GroupStore:
    """The groups' sealed state in a node's store (see the module docstring)."""

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self._records: dict[bytes, GroupRecord] = {}

    def _load(self, key: str, decode: Callable[[bytes], object]) -> object | None:
        data = self._store.get_state(key)
        if data is None:
            return None
        try:
            return decode(data)
        except (DchatError, ValueError, TypeError, KeyError):
            raise RequestError(
                "corrupt_state", f"stored group state {key!r} is malformed"
            ) from None

    def ids(self) -> list[bytes]:
        """Every group this node holds, oldest first."""
        value = self._load(_INDEX, lambda d: [bytes(g) for g in canonical_decode(d, _LIMITS)])
        return value if isinstance(value, list) else []

    def record(self, gid: bytes) -> GroupRecord | None:
        data = self._store.get_state(f"group.{gid.hex()}")
        if data is None:
            return None
        digest = hashlib.sha256(data).digest()
        record = self._records.get(digest)
        if record is None:
            value = self._load(f"group.{gid.hex()}", GroupRecord.decode)
            if not isinstance(value, GroupRecord):
                return None
            record = value
        self._keep(digest, record)
        return replace(record, held=list(record.held))

    def _keep(self, digest: bytes, record: GroupRecord) -> None:
        self._records.pop(digest, None)
        self._records[digest] = replace(record, held=list(record.held))  # newest last
        while len(self._records) > _CACHED:
            del self._records[next(iter(self._records))]

    def save(self, record: GroupRecord) -> None:
        gid = record.state.group_id
        data = record.encode()
        self._store.put_state(f"group.{gid.hex()}", data)
        self._keep(hashlib.sha256(data).digest(), record)  # what we wrote: not decoded again
        ids = self.ids()
        if gid not in ids:
            self._store.put_state(_INDEX, canonical_encode([*ids, gid]))

    def keys(self, gid: bytes) -> GroupKeys:
        value = self._load(f"group.keys.{gid.hex()}", GroupKeys.decode)
        keys = value if isinstance(value, GroupKeys) else GroupKeys()
        if keys.inline:  # an older version's keys: one entry per device from now on
            for peer, chains in keys.inline.items():
                self.save_chains(gid, peer, chains)
            keys.inline = {}
            self.save_keys(gid, keys)
        return keys

    def save_keys(self, gid: bytes, keys: GroupKeys) -> None:
        self._store.put_state(f"group.keys.{gid.hex()}", keys.encode())

    def _chain_key(self, gid: bytes, peer: tuple[bytes, bytes]) -> str:
        return f"group.chains.{gid.hex()}.{peer[0].hex()}.{peer[1].hex()}"

    def chains(self, gid: bytes, peer: tuple[bytes, bytes]) -> list[SenderChain]:
        """The chains we hold of member device ``peer`` (identity, device), oldest first."""
        for _ in range(2):
            value = self._load(
                self._chain_key(gid, peer),
                lambda d: [SenderChain.from_map(c) for c in canonical_decode(d, _LIMITS)],
            )
            if isinstance(value, list):
                return value
            if not self.keys(gid).peers:  # an older version's keys are split on reading
                break
        return []

    def save_chains(self, gid: bytes, peer: tuple[bytes, bytes], chains: list[SenderChain]) -> None:
        """Keep ``chains`` for ``peer`` (none: forget it)."""
        if chains:
            value = canonical_encode([c.to_map() for c in chains])
            self._store.put_state(self._chain_key(gid, peer), value)
        else:
            self._store.delete_state(self._chain_key(gid, peer))

    def forget_keys(self, gid: bytes) -> None:
        """Drop our chain and every chain we hold in group ``gid`` (we left it)."""
        for peer in self.keys(gid).peers:
            self.save_chains(gid, peer, [])
        self._store.delete_state(f"group.keys.{gid.hex()}")

    def history(self, gid: bytes, limit: int) -> list[dict[str, object]]:
        """The newest ``limit`` messages of a group, oldest first."""
        log = self._load(f"group.log.{gid.hex()}", lambda d: canonical_decode(d, _LIMITS))
        rows = log if isinstance(log, list) else []
        keys = ("message_id", "by", "sent_at_ms", "text", "direction", "seq", "hash")
        return [dict(zip(keys, row, strict=False)) for row in rows[-limit:]]

    def log(self, gid: bytes, row: list[object]) -> None:
        key = f"group.log.{gid.hex()}"
        log = self._load(key, lambda d: canonical_decode(d, _LIMITS))
        rows = [*(log if isinstance(log, list) else []), row][-MAX_LOG:]
        self._store.put_state(key, canonical_encode(rows))

    def wait(self, kind: str, sender: bytes, device: bytes, data: bytes) -> None:
        waiting = self.waiting()
        entry = (kind, sender, device, data)
        if entry not in waiting:
            rows = [list(e) for e in [*waiting, entry][-MAX_WAITING:]]
            self._store.put_state(_WAITING, canonical_encode(rows))

    def set_waiting(self, rows: list[tuple[str, bytes, bytes, bytes]]) -> None:
        self._store.put_state(_WAITING, canonical_encode([list(e) for e in rows]))

    def waiting(self) -> list[tuple[str, bytes, bytes, bytes]]:
        value = self._load(_WAITING, lambda d: canonical_decode(d, _LIMITS))
        rows = value if isinstance(value, list) else []
        return [(str(k), bytes(s), bytes(d), bytes(x)) for k, s, d, x in rows]


def read_plaintext(data: bytes) -> tuple[bytes, int, str]:
    try:
        f = Fields(canonical_decode(data, _LIMITS), "group text", frozenset({"mid", "ts", "text"}))
        text = f.get_str("text", max_len=MAX_TEXT)
        if not text:
            raise DecodeError("empty")
        return f.get_bytes("mid", size=MessageId.SIZE), f.get_int("ts", hi=2**53), text
    except (DecodeError, ValueError):
        raise GroupError("malformed", "a group message's text is malformed") from None
