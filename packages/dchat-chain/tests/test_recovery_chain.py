"""Guardian recovery on the chat chain as user nodes drive it: planned steps, verified reads.

Each :class:`Driver` is what a node's shell does for one identity key: read
the keys the planner names through a light client (commit certificates and
Merkle proofs against the conftest's certified chat chain), plan, submit the
transactions, and keep a :class:`RecoveryChainBook`.
"""

from __future__ import annotations

from typing import Any

import pytest

from dchat_chain import ChainArgumentError, Transaction
from dchat_chain._state_records import Account, account_key
from dchat_chain.lowlevel import (
    ChainAnswerError,
    ChainStep,
    HandleLookup,
    HandleOwner,
    LightReader,
    RecoveryChain,
    RecoveryChainBook,
    RecoveryTask,
    handle_work_bits,
    solve_handle_pow,
)
from dchat_core import IdentityId, canonical_encode
from dchat_crypto import PrivateKey, SigningKey
from dchat_identity import ContactCard, Identity

# A fee on the chain, as the testnet's: users' keys hold no tokens, recovery is free.
PARAMS = {"pow_bits": 2, "handle_pow_bits": 2, "recovery_delay_ms": 0, "min_fee": 1}


def _identity(i: int) -> Identity:
    seed = bytes([i]) * 32
    return Identity(SigningKey(seed), PrivateKey.from_bytes(seed), SigningKey(bytes([i + 9]) * 32))


OWNER, G1, G2, G3, NEW, THIEF = (_identity(i) for i in range(61, 67))


def _pk(who: Identity) -> bytes:
    return who.signing_key.public_key.to_bytes()


def _id(who: Identity) -> bytes:
    return bytes(IdentityId.derive(_pk(who)))


class Net:
    """A certified chat chain: transactions go into blocks, each followed by its certifying one."""

    def __init__(self, validator_chain: Any, params: dict[str, int]) -> None:
        self.chain = validator_chain("chat", "chat", params)

    def submit(self, tx: Transaction) -> int:
        height = self.chain.block([tx.raw])
        self.chain.block()
        code: int = self.chain.signed.results[height].tx_results[0].code
        return code

    def nonce(self, key: bytes) -> int:
        raw = self.value(account_key(key))
        return 0 if raw is None else Account.from_bytes(raw).nonce

    def value(self, key: bytes) -> bytes | None:
        value: bytes | None = self.chain.app.query(key).value
        return value

    def identity_key(self, who: Identity) -> bytes:
        from dchat_core import canonical_decode

        record = self.value(b"id/" + _id(OWNER if who is OWNER else who))
        assert record is not None
        key: bytes = canonical_decode(record)["key"]
        return key


class Driver:
    """One node's shell around the planner (see the module docstring)."""

    def __init__(self, net: Net, who: Identity) -> None:
        self.net, self.who = net, who
        self.planner = RecoveryChain(who.signing_key, net.chain.genesis)
        self.book = RecoveryChainBook()
        self.reader = LightReader.restore(None, net.chain.genesis)
        self.clock: int | None = None  # None: the chain's block time
        self.height = 0

    @property
    def now_ms(self) -> int:
        return self.net.chain.signed.height * 1000 if self.clock is None else self.clock

    def read(self, key: bytes) -> bytes | None:
        read = self.reader.read(f"/v1/chain/state/{key.hex()}", key)
        while (path := read.next_request()) is not None:
            read.receive(self.net.chain.fetch(path))
        _, value, self.height = read.result()
        return value

    def step(self, task: RecoveryTask) -> ChainStep:
        values: dict[bytes, bytes | None] = {}
        while keys := self.planner.missing(task, values):
            values.update((key, self.read(key)) for key in keys)
        nonce = self.net.nonce(_pk(self.who))
        card = ContactCard.issue(self.who, name="me", relay="127.0.0.1:7001").to_bytes()
        step = self.planner.plan(
            task, values, nonce=nonce, now_ms=self.now_ms, document=b"doc", card=card,
            height=self.height,
        )  # fmt: skip
        for tx in step.txs:
            assert self.net.submit(tx) == 0, step
        self.book.stepped(task, step, self.now_ms)
        return step

    def states(self, task: RecoveryTask, limit: int = 4) -> list[str]:
        """Step until the task is done or waits; the states passed through (none: not due)."""
        seen: list[str] = []
        for _ in range(limit):
            if not self.book.due([task], self.now_ms):
                break
            step = self.step(task)
            seen.append(step.state)
            if step.done or not step.txs:
                break
        return seen


def _set(*guardians: Identity, threshold: int = 2) -> RecoveryTask:
    keys = tuple(_pk(g) for g in guardians)
    return RecoveryTask("guardians", _id(OWNER), guardians=keys, threshold=threshold)


def _approval(new: Identity = NEW, until_ms: int = 0) -> RecoveryTask:
    return RecoveryTask("approval", _id(OWNER), _pk(new), until_ms=until_ms)


def _execution() -> RecoveryTask:
    return RecoveryTask("execution", _id(OWNER), _pk(NEW))


def _register(net: Net, who: Identity) -> None:
    from dchat_chain.lowlevel import solve_pow

    body = {"pow": solve_pow("chat", _pk(who), PARAMS["pow_bits"]), "doc": bytes(32)}
    tx = Transaction.create(
        who.signing_key, chain_id="chat", nonce=net.nonce(_pk(who)), fee=0,
        kind="register_identity", body=body,
    )  # fmt: skip
    assert net.submit(tx) == 0


@pytest.fixture
def net(validator_chain: Any) -> Net:
    net = Net(validator_chain, PARAMS)
    _register(net, G1)  # G2 and G3 are not on the chain: they register when they act
    return net


def test_a_recovery_moves_the_identity_on_the_chain(net: Net) -> None:
    owner = Driver(net, OWNER)
    assert owner.states(_set(G1, G2, G3)) == ["registering", "done"]
    name = "owner"
    work = solve_handle_pow("chat", name, _id(OWNER), handle_work_bits(2, name))
    card = ContactCard.issue(OWNER, name="o", relay="127.0.0.1:7000").to_bytes()
    body = {"name": name, "pow": work, "relays": ["127.0.0.1:7000"], "card": card}
    handle = Transaction.create(
        OWNER.signing_key, chain_id="chat", nonce=net.nonce(_pk(OWNER)), fee=0,
        kind="register_handle", body=body,
    )  # fmt: skip
    assert net.submit(handle) == 0

    new = Driver(net, NEW)
    assert new.states(_execution()) == ["waiting_for_guardians"]
    assert Driver(net, G1).states(_approval()) == ["requesting", "done"]
    assert new.states(_execution()) == ["approving"]
    assert new.step(_execution()).detail == "1 of 2 guardians approved on the chain"
    assert Driver(net, G2).states(_approval()) == ["approving", "done"]  # registered on the way
    assert new.states(_execution()) == ["executing", "renewing_handle", "done"]

    assert net.identity_key(OWNER) == _pk(NEW)
    assert net.value(b"idkey/" + _pk(OWNER)) is None  # the lost key speaks for no one
    assert HandleOwner.chain_identity(new.read(b"idkey/" + _pk(NEW))) == _id(OWNER)
    lookup = HandleLookup(new.reader, "@owner")
    while (path := lookup.next_request()) is not None:
        lookup.receive(_handle_answer(net, path))
    record = lookup.result()
    assert record is not None
    assert (record.key, record.card_current) == (_pk(NEW), True)  # by proof: the new key
    assert ContactCard.from_bytes(record.card).relays == ("127.0.0.1:7001",)  # its card
    # The old key can no longer act for the identity (e.g. point its prekeys elsewhere).
    stale = Transaction.create(
        OWNER.signing_key, chain_id="chat", nonce=net.nonce(_pk(OWNER)), fee=0,
        kind="set_prekeys", body={"pointer": b"x"},
    )  # fmt: skip
    assert net.submit(stale) != 0
    # A guardian late to the party finds the work done; the old owner's set task too.
    assert Driver(net, G3).states(_approval()) == ["done"]
    assert owner.states(_set(G1, G2, G3)) == []  # done before: not due
    assert Driver(net, OWNER).states(_set(G1, G2, G3)) == ["rotated_away"]


def _handle_answer(net: Net, path: str) -> dict[str, Any]:
    from dchat_chain.lowlevel import answer_fields, certified_query, handle_key

    prefix = "/v1/chain/handles/"
    if path.startswith(prefix):
        key = handle_key(path.removeprefix(prefix))
    elif path.startswith("/v1/chain/identities/"):
        key = b"id/" + bytes.fromhex(path.rsplit("/", 1)[1])
    else:
        answer: dict[str, Any] = net.chain.fetch(path)
        return answer
    return answer_fields(certified_query(net.chain.app, net.chain.store.height(), key))


def test_the_owners_veto_cancels_a_thiefs_request_on_the_chain(net: Net) -> None:
    owner, g1, g2 = Driver(net, OWNER), Driver(net, G1), Driver(net, G2)
    owner.states(_set(G1, G2))
    veto = RecoveryTask("veto", _id(OWNER), _pk(THIEF), until_ms=10**9)
    owner.clock = 0
    assert owner.states(veto) == ["watching"]  # nothing on the chain yet
    assert g1.states(_approval(THIEF)) == ["requesting", "done"]
    owner.clock = 30_000  # a watching task looks again after 30 s
    assert owner.states(veto) == ["vetoing", "watching"]
    assert net.value(b"rec/" + _id(OWNER)) is None
    assert g1.states(_approval(THIEF)) == []  # done: g1 never starts it again
    thief = Driver(net, THIEF)
    assert thief.states(RecoveryTask("execution", _id(OWNER), _pk(THIEF))) == [
        "waiting_for_guardians"
    ]
    # A guardian that approved before the veto reached it starts the request again:
    assert g2.states(_approval(THIEF)) == ["requesting", "done"]
    assert g1.states(_approval()) == ["conflict"]  # another recovery is pending: no override
    owner.clock = 60_000
    assert owner.states(veto) == ["vetoing", "watching"]  # the owner's key vetoes again
    assert net.identity_key(OWNER) == _pk(OWNER)
    owner.clock = 10**9  # once its off-chain request expired, the veto task is finished
    assert owner.states(veto) == ["expired"]


def test_execution_waits_for_the_chains_time_lock(validator_chain: Any) -> None:
    net = Net(validator_chain, {**PARAMS, "recovery_delay_ms": 20_000})  # block time: 1 s/block
    _register(net, G1)
    Driver(net, OWNER).states(_set(G1, G2, threshold=1))
    Driver(net, G1).states(_approval())
    new = Driver(net, NEW)
    step = new.step(_execution())
    assert step.state == "time_locked"
    assert 2.0 <= step.wait <= 20.0
    while net.chain.signed.height < 30:
        net.chain.block()
    assert new.states(_execution()) == ["executing", "done"]


def test_set_changes_and_a_guardian_outside_the_chains_set(net: Net) -> None:
    owner = Driver(net, OWNER)
    owner.states(_set(G1, G2))
    assert Driver(net, G3).states(_approval()) == ["not_a_chain_guardian"]
    assert owner.states(_set(G1, G3)) == ["updating", "done"]
    assert Driver(net, G3).states(_approval()) == ["requesting", "done"]
    assert Driver(net, G2).states(_approval()) == ["not_a_chain_guardian"]


def test_nothing_to_move_for_an_identity_never_on_the_chain(net: Net) -> None:
    assert Driver(net, NEW).states(_execution()) == ["not_on_chain"]
    assert Driver(net, NEW).step(_execution()).done
    assert Driver(net, G1).states(_approval()) == ["not_on_chain"]
    assert not Driver(net, G1).step(_approval()).done  # the owner may still register


def test_malformed_answers_and_wrong_calls_are_typed(net: Net) -> None:
    planner = RecoveryChain(NEW.signing_key, net.chain.genesis)
    task = _execution()
    with pytest.raises(ChainArgumentError):
        planner.plan(task, {}, nonce=0, now_ms=0)
    values: dict[bytes, bytes | None] = {
        b"id/" + _id(OWNER): canonical_encode({"key": 5}),
        b"rec/" + _id(OWNER): None,
        b"hid/" + _id(OWNER): None,
    }
    with pytest.raises(ChainAnswerError):
        planner.plan(task, values, nonce=0, now_ms=0)
    values[b"id/" + _id(OWNER)] = b"\xff"
    with pytest.raises(ChainAnswerError):
        planner.plan(task, values, nonce=0, now_ms=0)
    with pytest.raises(ChainArgumentError):
        RecoveryTask("approval", _id(OWNER))  # no new key
    with pytest.raises(ChainArgumentError):
        RecoveryTask("guardians", _id(OWNER), guardians=(_pk(G1),), threshold=2)


def test_the_book_keeps_failures_retries_them_and_forgets_gone_tasks() -> None:
    book = RecoveryChainBook()
    task, other = _execution(), _approval()
    assert book.due([task, other], 0) == [task, other]
    assert book.view(task) == {"state": "pending", "done": False}
    book.failed(task, "chain_unreachable", "connection refused", 1000)
    book.failed(task, "chain_unreachable", "connection refused", 2000)
    view = RecoveryChainBook(book.to_bytes()).view(task)  # stored and restored
    assert view["error"] == "chain_unreachable: connection refused"
    assert (view["failures"], view["next_attempt"]) == (2, 4.0)  # 1 s, then 2 s
    assert book.due([task], 3999) == []
    assert book.due([task], 4000) == [task]
    book.stepped(task, ChainStep("done", done=True), 5000)
    assert book.due([task], 10**9) == []
    assert book.view(task) == {"state": "done", "done": True}
    book.stepped(other, ChainStep("approving", wait=2.0, detail="1 of 2"), 0)
    assert book.view(other) == {
        "state": "approving", "done": False, "detail": "1 of 2", "next_attempt": 2.0
    }  # fmt: skip
    book.changed = False
    book.due([task], 0)  # the approval's task is gone: its entry too
    assert book.changed
    assert book.view(other)["state"] == "pending"
    with pytest.raises(ChainArgumentError):
        RecoveryChainBook(canonical_encode({"x": [1]}))
