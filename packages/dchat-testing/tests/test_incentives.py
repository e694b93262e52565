"""Relay incentives end to end, sans-IO: probes and audits, reports, rewards, faults, slashing.

Four validators each run a :class:`~dchat_network.Prober` and a currency-chain
application; every block goes to all four applications (what consensus gives
them), which must agree on every state root. Four bonded relays: two honest
ones (answer every probe, back every receipt they claim; one delivered three
times as much as the other), a *dropper* (its node is gone: no probe is
answered) and a *forger* (answers probes, but claims a receipt batch larger
than the receipts it holds). Epoch by epoch the validators probe and audit,
file their ``uptime_report`` (scores and proven deliveries), and submit relay
fault evidence once the chain records a fault. Half of each epoch's rewards
follow the proven deliveries (``relay_delivery_permille`` 500), the rest uptime.
"""

from __future__ import annotations

from typing import Any

from dchat_chain import CurrencyChainApp, Transaction
from dchat_chain.lowlevel import BlockContext, RelayFaultEvidence
from dchat_core import MailboxId, NodeId, canonical_decode, canonical_encode
from dchat_crypto import BlsSecretKey, SigningKey
from dchat_network import Prober, ProbeTarget
from dchat_network.lowlevel import DeliveryReceipt, ReceiptBook, answer_probe

VALIDATORS = [SigningKey(bytes([0x30 + i]) * 32) for i in range(4)]
BLS = [BlsSecretKey.from_seed(bytes([0x40 + i]) * 32) for i in range(4)]
EPOCH = 8
CHAIN = "cur-incentives"
NOW = 1_800_000_000_000


class Relay:
    """A relay: its stake account, node key, receipt book and behaviour."""

    def __init__(self, seed: int, behaviour: str, delivered: int = 6) -> None:
        self.account = SigningKey(bytes([seed]) * 32)
        self.node = SigningKey(bytes([seed + 1]) * 32)
        self.node_id = NodeId.derive(self.node.public_key.to_bytes())
        self.behaviour = behaviour
        self.book = ReceiptBook(bytes(self.node_id))
        self.user = SigningKey(bytes([seed + 2]) * 32)
        self.sent = 0
        self.claim = (b"", 0)
        self.deliver(delivered)

    def deliver(self, n: int) -> None:
        """``n`` envelopes delivered and receipted, sealed and claimed on the chat chain."""
        mailbox = bytes(MailboxId.derive(self.user.public_key.to_bytes()))
        ids = [bytes([self.sent + i]) * 32 for i in range(n)]
        self.sent += n
        self.book.handed(mailbox, ids)
        receipt = DeliveryReceipt.sign(self.user, bytes(self.node_id), ids)
        self.book.take(mailbox, receipt.to_bytes())
        batch = self.book.seal()
        assert batch is not None
        claimed = batch.count * 3 if self.behaviour == "forger" else batch.count
        self.claim = (batch.root, claimed)  # what it put on the chat chain

    @property
    def target(self) -> ProbeTarget:
        return ProbeTarget(
            self.account.public_key.to_bytes(), "relay.test", 7400, self.node_id, self.claim
        )


def genesis(relays: list[Relay]) -> bytes:
    validators = [
        [v.public_key.to_bytes(), b.public_key.to_bytes(), b.prove_possession().to_bytes(), 1_000]
        for v, b in zip(VALIDATORS, BLS, strict=True)
    ]
    params = {
        "epoch_blocks": EPOCH,
        "relay_reward_per_epoch": 3_000,
        "min_relay_stake": 100,
        "relay_fault_epochs": 2,
    }
    accounts = [[r.account.public_key.to_bytes(), 10_000] for r in relays]
    accounts += [[v.public_key.to_bytes(), 10_000] for v in VALIDATORS]
    doc = {
        "v": 1,
        "kind": "currency",
        "chain_id": CHAIN,
        "params": params,
        "accounts": accounts,
        "validators": validators,
        "relay_pool": 1_000_000,
    }
    return canonical_encode(doc)


class Network:
    """Four validators (prober + application) and the relays they probe."""

    def __init__(self, relays: list[Relay]) -> None:
        raw = genesis(relays)
        self.apps = [CurrencyChainApp.from_genesis(raw) for _ in VALIDATORS]
        self.probers = [Prober(v, random_bytes=_counter(i)) for i, v in enumerate(VALIDATORS)]
        self.relays = relays
        self.nonces: dict[bytes, int] = {}

    def tx(self, key: SigningKey, kind: str, body: dict[str, Any]) -> bytes:
        sender = key.public_key.to_bytes()
        nonce = self.nonces.get(sender, 0)
        self.nonces[sender] = nonce + 1
        return Transaction.create(key, chain_id=CHAIN, nonce=nonce, fee=0, kind=kind, body=body).raw

    def block(self, *txs: bytes) -> list[int]:
        height = self.apps[0].height + 1
        context = BlockContext(CHAIN, height, height * 1000, b"")
        codes = [[r.code for r in app.apply_block(context, txs).tx_results] for app in self.apps]
        roots = {app.commit() for app in self.apps}
        assert len(roots) == 1, "the validators' engines disagree"
        assert all(c == codes[0] for c in codes)
        return codes[0]

    def probe_round(self, epoch: int) -> None:
        """Every validator probes every relay once (and audits the ones that answer)."""
        for prober in self.probers:
            for relay in self.relays:
                challenge = prober.challenge(relay.target, epoch, NOW)
                if relay.behaviour == "dropper":
                    prober.failed(challenge)
                    continue
                signature = answer_probe(relay.node, challenge.to_bytes(), NOW)
                node_key = relay.node.public_key.to_bytes()
                assert prober.answered(challenge, node_key, signature, NOW + 20)
                index = prober.audit_index(relay.target)
                assert index is not None
                prober.audited(relay.target, epoch, index, relay.book.answer(relay.claim[0], index))

    def epoch(self) -> None:
        """Probe through one epoch, file the reports late in it, pay it, submit faults."""
        epoch = (self.apps[0].height + 1) // EPOCH
        while True:
            offset = (self.apps[0].height + 1) % EPOCH
            self.probe_round(epoch)
            due = [p.take_report(epoch, offset, EPOCH) for p in self.probers]
            if all(d is not None for d in due):
                break
            assert not any(due)
            self.block()
        reports = [
            self.tx(v, "uptime_report", {"epoch": epoch, "scores": [list(s) for s in scores]})
            for v, scores in zip(VALIDATORS, due, strict=True)
            if scores is not None
        ]
        assert self.block(*reports) == [0] * 4
        while (self.apps[0].height + 1) % EPOCH:
            self.block()
        self.block()  # the next epoch's first block pays this one and counts strikes
        self.submit_faults()

    def submit_faults(self) -> None:
        raw = self.apps[0].state.committed_get(b"rfaults")
        for relay in [] if raw is None else canonical_decode(raw):
            epoch = canonical_decode(self.apps[0].state.committed_get(b"rfault/" + relay))
            evidence = RelayFaultEvidence(relay, epoch).to_bytes()
            # Every validator submits it; the chain takes the first and refuses the rest.
            codes = self.block(*(self.tx(v, "slash", {"evidence": evidence}) for v in VALIDATORS))
            assert sorted(codes)[0] == 0
            assert sum(1 for c in codes if c == 0) == 1

    def earnings(self, relay: Relay) -> dict[str, int]:
        raw = self.apps[0].state.committed_get(b"earn/" + relay.account.public_key.to_bytes())
        return {"u": 0, "d": 0} if raw is None else dict(canonical_decode(raw))

    def balance(self, relay: Relay) -> int:
        return self.apps[0].account(relay.account.public_key.to_bytes()).balance

    def bond(self, relay: Relay) -> int:
        raw = self.apps[0].state.committed_get(b"relay/" + relay.account.public_key.to_bytes())
        return 0 if raw is None else int(canonical_decode(raw))


def _counter(seed: int) -> Any:
    count = [0]

    def random_bytes(n: int) -> bytes:
        count[0] += 1
        return (seed * 1_000_003 + count[0] * 7919).to_bytes(n, "big")

    return random_bytes


def test_honest_relays_earn_by_uptime_and_proven_delivery_while_cheats_are_slashed() -> None:
    honest, quiet = Relay(0x50, "honest", 6), Relay(0x80, "honest", 2)
    dropper, forger = Relay(0x60, "dropper"), Relay(0x70, "forger")
    net = Network([honest, quiet, dropper, forger])
    bonds = [net.tx(r.account, "relay_bond", {"amount": 1_000}) for r in net.relays]
    assert net.block(*bonds) == [0, 0, 0, 0]
    earned = []
    start = net.balance(honest)
    net.epoch()  # both honest batches proven: 1,500 by deliveries (6:2), 1,500 by uptime (1:1)
    assert net.earnings(honest) == {"u": 750, "d": 1_125}
    assert net.earnings(quiet) == {"u": 750, "d": 375}
    earned.append(net.balance(honest) - start)
    net.epoch()  # nothing new claimed: the whole reward follows uptime
    assert net.earnings(honest) == {"u": 750 + 1_500, "d": 1_125}
    earned.append(net.balance(honest) - start)
    quiet.deliver(9)  # a new batch: the quiet relay now delivered more this epoch
    forger.deliver(4)
    net.epoch()
    assert net.earnings(quiet) == {"u": 750 + 1_500 + 750, "d": 375 + 1_500}
    assert net.earnings(honest)["d"] == 1_125  # its batch was counted once, in epoch 0
    earned.append(net.balance(honest) - start)
    assert 0 < earned[0] < earned[1] < earned[2]  # the honest relay's reward rises each epoch
    assert net.balance(dropper) == net.balance(forger) == 10_000 - 1_000  # never paid
    assert net.earnings(forger) == net.earnings(dropper) == {"u": 0, "d": 0}
    assert net.bond(honest) == net.bond(quiet) == 1_000
    assert net.bond(dropper) == net.bond(forger) == 900  # a fault after two bad epochs
    assert net.probers[0].scores(0) == []  # an epoch is forgotten once a later one reported
