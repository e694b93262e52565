"""Guardian recovery on the chat chain from a user node's side, sans-IO: what to submit, when.

Theory of operation. Guardian recovery runs between nodes (dchat-identity's
agents); the chat chain holds the identity's key (``id/<id>``), so the chain
must follow or the old key keeps acting there and handle lookups keep naming
it (:mod:`._chat_identity` has the transactions). A node has four kinds of
:class:`RecoveryTask`, each derived by the shell from the agents' state:

* ``guardians`` (the owner, after a guardian setup): the chain's guardian set
  ``g``/``th`` equals the off-chain one. ``g`` holds the guardians' *chain*
  identities (``idkey/<their key>``, or the id their key derives when they are
  not on the chain yet: a later registration gets exactly that id). An
  identity not on the chain is registered with its set (one proof of work).
* ``approval`` (a guardian, after approving off-chain): ``recovery_request``
  with the request's new key when none is pending, else ``recovery_approve``;
  a guardian not on the chain registers first (its id must be in ``g``).
  Done once our approval is counted, so a later veto is never undone by us.
* ``veto`` (the owner, after vetoing off-chain): ``recovery_veto`` whenever
  the chain holds a pending request for the vetoed new key, until the
  off-chain request expires (a guardian that approved before the veto reached
  it may still submit it).
* ``execution`` (the recovering node, after finishing off-chain; its key is
  the new one): ``recovery_execute`` once the chain's request has ``th``
  approvals and its time lock (``recovery_delay_ms`` of block time) ended;
  then, if the identity holds a live handle (``hid/<id>``) whose card is the
  old key's, ``renew_handle`` with the node's new card (the handle's work
  paid again), so a lookup's card is current and contacts can add it.

For each due task the shell reads the state keys :meth:`RecoveryChain.missing`
names (verified reads, repeated until nothing is missing), then asks
:meth:`RecoveryChain.plan` for a :class:`ChainStep`: the transactions to
submit in order (the first at the sender's next nonce), the state to show,
whether the task is finished and when to look again. The plan decides from
the verified records alone, so a step that was interrupted (a chain that did
not answer, a crash) is simply planned again; :class:`RecoveryChainBook`
remembers states, errors and retry times. Solving a registration's proof of
work is CPU work: the shell runs :meth:`RecoveryChain.plan` in a thread.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from dchat_core import (
    DchatError,
    DecodeError,
    DecodeLimits,
    IdentityId,
    canonical_decode,
    canonical_encode,
)
from dchat_identity import ContactCard

from ._chat import FREE_KINDS, ChatChainApp
from ._chat_identity import solve_pow
from ._errors import ChainAnswerError, ChainArgumentError
from ._handle_lookup import decode_handle_record
from ._handle_owner import HandleOwner
from ._tx import Transaction

if TYPE_CHECKING:
    from collections.abc import Mapping

    from dchat_crypto import SigningKey

__all__ = ("ChainStep", "RecoveryChain", "RecoveryTask")

TaskRole = Literal["guardians", "approval", "veto", "execution"]
_ROLES: Final = frozenset({"guardians", "approval", "veto", "execution"})
_LIMITS: Final = DecodeLimits(max_size=8192, max_depth=3, max_items=64)
_SOON: Final = 2.0  # seconds: waiting for others (guardians, a block)
_LATER: Final = 30.0  # seconds: waiting for a person (the owner, a veto)
_MAX_WAIT: Final = 60.0


@dataclass(frozen=True, slots=True)
class RecoveryTask:
    """One thing the chain must come to hold (see the module docstring).

    Attributes:
        role: ``guardians``, ``approval``, ``veto`` or ``execution``.
        subject: The identity being protected or recovered (32-byte id).
        new_key: The recovery's new identity key (not for ``guardians``).
        guardians: The guardians' current identity keys (``guardians`` only).
        threshold: How many guardians must agree (``guardians`` only).
        until_ms: When the off-chain request expires (``approval``, ``veto``; 0: never).
    """

    role: TaskRole
    subject: bytes
    new_key: bytes = b""
    guardians: tuple[bytes, ...] = ()
    threshold: int = 0
    until_ms: int = 0

    def __post_init__(self) -> None:
        if self.role not in _ROLES or len(self.subject) != 32:
            raise ChainArgumentError("a recovery task needs a known role and a 32-byte subject")
        if (self.role == "guardians") == (len(self.new_key) == 32):
            raise ChainArgumentError("a recovery task's new key is 32 bytes, except for guardians")
        if self.role == "guardians" and not 1 <= self.threshold <= len(self.guardians):
            raise ChainArgumentError("a guardian set needs 1 <= threshold <= guardians")

    @property
    def task_id(self) -> str:
        """A stable name of the task (hex), for the shell's book."""
        fields = [self.role, self.subject, self.new_key, sorted(self.guardians), self.threshold]
        return hashlib.sha256(canonical_encode(fields)).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class ChainStep:
    """What to do for a task now.

    Attributes:
        state: Where the task stands (shown in the node's recovery status).
        txs: Transactions to submit in order (empty: nothing to submit now).
        done: The task needs nothing more.
        wait: Seconds until the task is worth looking at again.
        detail: A line for people (approvals counted, the unlock time, ...).
        handle: The identity's handle this step renews ("" if none).
    """

    state: str
    txs: tuple[Transaction, ...] = ()
    done: bool = False
    wait: float = 0.0
    detail: str = ""
    handle: str = ""


def _record(value: bytes | None, what: str) -> Any:
    if value is None:
        return None
    try:
        return canonical_decode(value, _LIMITS)
    except DecodeError as exc:
        raise ChainAnswerError(f"malformed {what} record: {exc}") from None


def _identity_record(value: bytes | None) -> dict[str, Any] | None:
    record = _record(value, "identity")
    if record is None:
        return None
    if not (
        isinstance(record, dict)
        and isinstance(record.get("key"), bytes)
        and isinstance(record.get("g"), list)
        and isinstance(record.get("th"), int)
    ):
        raise ChainAnswerError("malformed identity record")
    return record


def _request_record(value: bytes | None) -> dict[str, Any] | None:
    record = _record(value, "recovery request")
    if record is None:
        return None
    if not (
        isinstance(record, dict)
        and isinstance(record.get("key"), bytes)
        and isinstance(record.get("ok"), list)
        and isinstance(record.get("unlock"), int)
    ):
        raise ChainAnswerError("malformed recovery request record")
    return record


def _id_of(value: bytes | None) -> bytes | None:
    identity = _record(value, "idkey")
    if identity is not None and not (isinstance(identity, bytes) and len(identity) == 32):
        raise ChainAnswerError("malformed idkey record: not an identity id")
    return identity


def _derived(key: bytes) -> bytes:
    return bytes(IdentityId.derive(key))


class RecoveryChain:
    """Plans one node's recovery transactions on one chat chain.

    Args:
        key: The node's identity signing key (the transactions' sender).
        genesis: The chat chain's genesis document.

    Raises:
        ChainArgumentError: ``genesis`` is not a chat chain's.
    """

    def __init__(self, key: SigningKey, genesis: bytes) -> None:
        app = ChatChainApp.from_genesis(genesis)
        self._genesis = genesis
        self.chain_id = app.chain_id
        self._params = app.params()
        self._key = key
        self.public_key = key.public_key.to_bytes()

    # -- what to read -------------------------------------------------------------------

    def missing(self, task: RecoveryTask, values: Mapping[bytes, bytes | None]) -> list[bytes]:
        """The state keys ``plan`` needs that ``values`` lacks (read them, then ask again).

        Raises:
            ChainAnswerError: A value read so far is malformed.
        """
        own = b"idkey/" + self.public_key
        subject = task.subject
        if task.role == "guardians":
            wanted = [own, *(b"idkey/" + g for g in task.guardians)]
            if own in values:
                wanted.append(b"id/" + (_id_of(values[own]) or _derived(self.public_key)))
        elif task.role == "execution":
            wanted = [b"id/" + subject, b"rec/" + subject, b"hid/" + subject]
            skeleton = _record(values.get(b"hid/" + subject), "hid")
            if isinstance(skeleton, str):
                wanted.append(b"handle/" + skeleton.encode("ascii", "replace"))
        else:
            wanted = [own, b"id/" + subject, b"rec/" + subject]
        return [key for key in wanted if key not in values]

    # -- what to do ------------------------------------------------------------------------

    def plan(
        self,
        task: RecoveryTask,
        values: Mapping[bytes, bytes | None],
        *,
        nonce: int,
        now_ms: int,
        document: bytes = b"",
        card: bytes = b"",
        height: int = 0,
    ) -> ChainStep:
        """The next step of ``task`` given the verified ``values`` (see the module docstring).

        ``nonce`` is the sender's next nonce; ``document`` the node's identity
        document (its hash goes into a registration); ``card`` the node's
        contact card and ``height`` the height of the state ``values`` were
        proven in (an ``execution`` renews the handle with them).

        Raises:
            ChainArgumentError: A value :meth:`missing` names was not given.
            ChainAnswerError: A value is malformed.
        """
        if self.missing(task, values):
            raise ChainArgumentError("read every value missing() names first")
        if task.until_ms and now_ms >= task.until_ms:
            return ChainStep("expired", done=True, detail="the off-chain request expired")
        if task.role == "guardians":
            return self._guardians(task, values, nonce, document)
        if task.role == "approval":
            return self._approval(task, values, nonce, document)
        if task.role == "veto":
            return self._veto(task, values, nonce)
        step = self._execution(task, values, nonce, now_ms)
        if step.state == "moved":
            return self._handle(task, values, nonce, card, height)
        return step

    def _tx(self, nonce: int, kind: str, body: dict[str, Any]) -> Transaction:
        fee = 0 if kind in FREE_KINDS else int(self._params["min_fee"])
        return Transaction.create(
            self._key, chain_id=self.chain_id, nonce=nonce, fee=fee, kind=kind, body=body
        )

    def _registration(self, nonce: int, document: bytes, **extra: Any) -> Transaction:
        work = solve_pow(self.chain_id, self.public_key, self._params["pow_bits"])
        body = {"pow": work, "doc": hashlib.sha256(document).digest(), **extra}
        return self._tx(nonce, "register_identity", body)

    def _guardians(
        self, task: RecoveryTask, values: Mapping[bytes, bytes | None], nonce: int, document: bytes
    ) -> ChainStep:
        me = _id_of(values[b"idkey/" + self.public_key])
        wanted = sorted({_id_of(values[b"idkey/" + g]) or _derived(g) for g in task.guardians})
        body = {"guardians": wanted, "threshold": task.threshold}
        if me is None:
            if values[b"id/" + _derived(self.public_key)] is not None:
                detail = "the identity moved to another key on the chain"
                return ChainStep("rotated_away", done=True, detail=detail)
            return ChainStep("registering", (self._registration(nonce, document, **body),))
        if me in wanted or len(wanted) != len(task.guardians):
            detail = "the chain refuses this set (the identity or a guardian twice)"
            return ChainStep("invalid", done=True, detail=detail)
        record = _identity_record(values[b"id/" + me])
        if record is None:
            raise ChainAnswerError("the chain names an identity it does not hold")
        if record["g"] == wanted and record["th"] == task.threshold:
            return ChainStep("done", done=True)
        return ChainStep("updating", (self._tx(nonce, "set_guardians", body),))

    def _approval(
        self, task: RecoveryTask, values: Mapping[bytes, bytes | None], nonce: int, document: bytes
    ) -> ChainStep:
        subject, own = task.subject, b"idkey/" + self.public_key
        record = _identity_record(values[b"id/" + subject])
        if record is None:
            return ChainStep("not_on_chain", wait=_LATER, detail="the identity is not on the chain")
        if record["key"] == task.new_key:
            return ChainStep("done", done=True, detail="the chain moved the identity")
        me = _id_of(values[own]) or _derived(self.public_key)
        if me not in record["g"]:
            detail = "this guardian is not in the chain's guardian set (yet)"
            return ChainStep("not_a_chain_guardian", wait=_LATER, detail=detail)
        txs = [] if values[own] is not None else [self._registration(nonce, document)]
        body = {"identity": subject}
        pending = _request_record(values[b"rec/" + subject])
        if pending is None:
            body["new_key"] = task.new_key
            txs.append(self._tx(nonce + len(txs), "recovery_request", body))
            return ChainStep("requesting", tuple(txs))
        if pending["key"] != task.new_key:
            detail = "another recovery of this identity is pending on the chain"
            return ChainStep("conflict", wait=_LATER, detail=detail)
        if me in pending["ok"]:
            return ChainStep("done", done=True, detail=_count(pending, record))
        txs.append(self._tx(nonce + len(txs), "recovery_approve", body))
        return ChainStep("approving", tuple(txs))

    def _veto(
        self, task: RecoveryTask, values: Mapping[bytes, bytes | None], nonce: int
    ) -> ChainStep:
        subject = task.subject
        record = _identity_record(values[b"id/" + subject])
        if record is not None and record["key"] == task.new_key:
            return ChainStep("executed", done=True, detail="too late: the chain moved the identity")
        if _id_of(values[b"idkey/" + self.public_key]) != subject:
            detail = "this key no longer speaks for the identity on the chain"
            return ChainStep("rotated_away", done=True, detail=detail)
        pending = _request_record(values[b"rec/" + subject])
        if pending is None or pending["key"] != task.new_key:
            return ChainStep("watching", wait=_LATER)
        return ChainStep("vetoing", (self._tx(nonce, "recovery_veto", {"identity": subject}),))

    def _execution(
        self, task: RecoveryTask, values: Mapping[bytes, bytes | None], nonce: int, now_ms: int
    ) -> ChainStep:
        subject = task.subject
        record = _identity_record(values[b"id/" + subject])
        if record is None:
            detail = "the identity was never on the chain: nothing to move"
            return ChainStep("not_on_chain", done=True, detail=detail)
        if record["key"] == task.new_key:
            return ChainStep("moved")
        pending = _request_record(values[b"rec/" + subject])
        if pending is None:
            return ChainStep("waiting_for_guardians", wait=_SOON)
        if pending["key"] != task.new_key:
            detail = "another recovery of this identity is pending on the chain"
            return ChainStep("conflict", wait=_LATER, detail=detail)
        if len(pending["ok"]) < record["th"]:
            return ChainStep("approving", wait=_SOON, detail=_count(pending, record))
        if now_ms < pending["unlock"]:  # block time decides; ours only says when to look
            wait = min(max((pending["unlock"] - now_ms) / 1000, _SOON), _MAX_WAIT)
            return ChainStep("time_locked", wait=wait, detail=f"unlock at {pending['unlock']} ms")
        tx = self._tx(nonce, "recovery_execute", {"identity": subject})
        return ChainStep("executing", (tx,), detail=_count(pending, record))

    def _handle(
        self,
        task: RecoveryTask,
        values: Mapping[bytes, bytes | None],
        nonce: int,
        card: bytes,
        height: int,
    ) -> ChainStep:
        moved = "the chain holds the new key"
        skeleton = _record(values[b"hid/" + task.subject], "hid")
        if skeleton is None or not card:
            return ChainStep("done", done=True, detail=moved)
        if not isinstance(skeleton, str):
            raise ChainAnswerError("malformed hid record")
        value = values[b"handle/" + skeleton.encode("ascii", "replace")]
        record = None if value is None else decode_handle_record(value, height)
        if record is None or record.identity != task.subject or record.expires <= height:
            return ChainStep("done", done=True, detail=moved)
        detail = f"{moved}, and @{record.name} the new card"
        try:
            current = ContactCard.from_bytes(record.card).identity_key.to_bytes()
        except DchatError:
            current = b""
        if current == self.public_key:
            return ChainStep("done", done=True, detail=detail, handle=record.name)
        relays = list(ContactCard.from_bytes(card).relays)
        owner = HandleOwner(self._key, self._genesis)
        tx = owner.renew(nonce, record.name, record.expires, relays, card, identity=task.subject)
        return ChainStep("renewing_handle", (tx,), detail=detail, handle=record.name)


def _count(pending: dict[str, Any], record: dict[str, Any]) -> str:
    return f"{len(pending['ok'])} of {record['th']} guardians approved on the chain"
