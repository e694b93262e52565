"""Shared fixtures: one validator's view of a certified chain, all in memory.

:class:`ValidatorChain` is what a validator node holds, without the node: an
:class:`IndexedApp` executing blocks that four known BLS keys certify
(:class:`SignedChain`), a :class:`DurableBlockStore` over a
:class:`MemoryBlockLog` holding them, the validator-set log, and
:meth:`ValidatorChain.fetch`, which answers the node API's light-client paths
the way the node does (``headers_page``, ``certified_query`` + ``answer_fields``).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from dchat_chain import Transaction
from dchat_chain._light_sim import SignedChain
from dchat_chain.lowlevel import (
    DurableBlockStore,
    IndexedApp,
    MemoryBlockLog,
    ValidatorSetLog,
    account_key,
    answer_fields,
    block_txs_answer,
    certified_query,
    headers_page,
)
from dchat_core import canonical_encode
from dchat_crypto import BlsSecretKey, SigningKey

BLS = [BlsSecretKey.from_seed(bytes([80 + i]) * 32) for i in range(4)]
ACCOUNTS = [SigningKey(bytes([90 + i]) * 32) for i in range(4)]
PK = [a.public_key.to_bytes() for a in ACCOUNTS]
_BLOCK_TXS = re.compile(r"/v1/chain/blocks/(\d+)/txs")
_HEADERS = re.compile(r"/v1/chain/headers\?from=(\d+)&limit=(\d+)")
_ACCOUNT = re.compile(r"/v1/chain/accounts/([0-9a-f]{64})")
_STATE = re.compile(r"/v1/chain/(state|relays)/((?:[0-9a-f]{2})+)")


def genesis_document(
    kind: str = "currency", chain_id: str = "idx", params: dict[str, int] | None = None
) -> bytes:
    """A genesis of four validators (100 power each) and four funded accounts."""
    validators = [
        [PK[i], BLS[i].public_key.to_bytes(), BLS[i].prove_possession().to_bytes(), 100]
        for i in range(4)
    ]
    doc = {
        "v": 1,
        "kind": kind,
        "chain_id": chain_id,
        "accounts": [[pk, 10_000] for pk in PK],
        "validators": validators,
    }
    if params:
        doc["params"] = params
    return canonical_encode(doc)


class ValidatorChain:
    """A validator's application and store, advanced by certified blocks."""

    PK = PK
    genesis_document = staticmethod(genesis_document)

    def __init__(
        self, kind: str = "currency", chain_id: str = "idx", params: dict[str, int] | None = None
    ) -> None:
        self.genesis = genesis_document(kind, chain_id, params)
        self.app = IndexedApp(self.genesis)
        self.store = DurableBlockStore(MemoryBlockLog())
        self.sets = ValidatorSetLog(self.store)
        self.signed = SignedChain(chain_id, self.app, self.app.genesis_state().validators, BLS)
        self.nonces = [0] * len(ACCOUNTS)
        self.sets.persist(self.sets.note(self.signed.state))

    def tx(self, sender: int, kind: str, body: dict[str, Any], fee: int = 1) -> bytes:
        """A signed transaction of account ``sender`` at its next nonce."""
        tx = Transaction.create(
            ACCOUNTS[sender],
            chain_id=self.app.chain_id,
            nonce=self.nonces[sender],
            fee=fee,
            kind=kind,
            body=body,
        )
        self.nonces[sender] += 1
        return tx.raw

    def transfer(self, sender: int = 0, amount: int = 5) -> Transaction:
        """A signed transfer to the next account, at the sender's next nonce."""
        tx = Transaction.create(
            ACCOUNTS[sender],
            chain_id=self.app.chain_id,
            nonce=self.nonces[sender],
            fee=1,
            kind="transfer",
            body={"to": PK[(sender + 1) % len(PK)], "amount": amount},
        )
        self.nonces[sender] += 1
        return tx

    def block(self, txs: list[bytes] | None = None) -> int:
        """Produce, store and note the next block; returns its height."""
        self.signed.produce(txs or [])
        height = self.signed.height
        self.store.save(self.signed.blocks[height], self.signed.certificates[height])
        self.sets.persist(self.sets.note(self.signed.state))
        return height

    def grow(self, to_height: int) -> list[bytes]:
        """One transfer per block up to ``to_height``; returns the transaction hashes."""
        digests = []
        while self.signed.height < to_height:
            tx = self.transfer()
            self.block([tx.raw])
            digests.append(tx.hash)
        return digests

    def fetch(self, path: str) -> dict[str, Any]:
        """Answer a light-client path of the node API, as the node does."""
        found = _BLOCK_TXS.fullmatch(path)
        if found:
            answer = block_txs_answer(self.store, int(found[1]))
            assert answer is not None, path
            return answer
        found = _HEADERS.fullmatch(path)
        if found:
            start, limit = int(found[1]), int(found[2])
            return headers_page(self.store, self.sets, self.app.chain_id, start, limit)
        found = _ACCOUNT.fullmatch(path)
        if found:
            key = account_key(bytes.fromhex(found[1]))
        else:
            found = _STATE.fullmatch(path)
            assert found, path
            key = bytes.fromhex(found[2])
            key = b"relay/" + key if found[1] == "relays" else key
        return answer_fields(certified_query(self.app, self.store.height(), key))


@pytest.fixture
def validator_chain() -> type[ValidatorChain]:
    """The :class:`ValidatorChain` class (tests build as many as they need)."""
    return ValidatorChain
