"""The chat chain run by four real validator processes (``init-testnet --chain chat``).

An identity registered through the API (paying its proof of work, no fee) and a
relay listed by a funded identity are committed by consensus and readable from
any validator with a Merkle proof that verifies against the block's app hash.
That relay, run as a real relay process with the identity's key as its node
key, takes a delivery receipt, claims the sealed batch with ``dchat-node relay
claim`` and backs an audited leaf of it; killed and restarted with ``chat_node``
set, it still backs every leaf of that claim and claims its next batch itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from typer.testing import CliRunner

from dchat_chain import Transaction
from dchat_chain.lowlevel import NetPlan, solve_pow, verify_proof
from dchat_core import IdentityId, MailboxId, NodeId, canonical_decode
from dchat_crypto import KdfParams, SigningKey, encrypt_with_passphrase
from dchat_messaging import SealedEnvelope
from dchat_network import relay_session
from dchat_network.lowlevel import AuditAnswer, DeliveryReceipt, check_audit
from dchat_node import NodeProcess
from dchat_node.cli import node_app
from dchat_node.cli._testnet import init_testnet
from dchat_node.validator._keys import load_wallet

PASSPHRASE = "chat chain test passphrase"
POW_BITS = 10


def test_init_testnet_chain_option(tmp_path: Path) -> None:
    runner = CliRunner()
    passfile = tmp_path / "pass"
    passfile.write_text(PASSPHRASE)
    base = ["chain", "init-testnet", "--validators", "1", "--accounts", "0"]
    base += ["--passphrase-file", str(passfile), "--insecure-fast-kdf"]
    wrong = runner.invoke(node_app, [*base, "--out", str(tmp_path / "a"), "--chain", "gossip"])
    assert wrong.exit_code == 1
    assert "currency, chat" in wrong.output
    done = runner.invoke(node_app, [*base, "--out", str(tmp_path / "b"), "--chain", "chat"])
    assert done.exit_code == 0, done.output
    genesis = canonical_decode((tmp_path / "b" / "validator-0" / "genesis.cbor").read_bytes())
    assert genesis["kind"] == "chat"
    assert len(genesis["validators"]) == 1


@pytest.fixture
def chat_net(tmp_path: Path) -> Iterator[tuple[dict[str, Any], list[httpx.Client], Path]]:
    out = tmp_path / "net"
    plan = NetPlan(validators=4, accounts=1, chain="chat", pow_bits=POW_BITS)
    summary = init_testnet(
        out, plan, PASSPHRASE.encode(), kdf=KdfParams.TESTING, block_interval=0.3
    )
    nodes = [
        NodeProcess(out / v["dir"], "validator", passphrase=PASSPHRASE, listen=v["listen"])
        for v in summary["validators"]
    ]
    clients: list[httpx.Client] = []
    try:
        for node in nodes:
            node.start()
            headers = {"Authorization": f"Bearer {node.info['token']}"}
            clients.append(httpx.Client(base_url=node.info["url"], headers=headers, timeout=5))
        yield summary, clients, out
    finally:
        for client in clients:
            client.close()
        for node in nodes:
            node.kill()


def _submit(client: httpx.Client, tx: Transaction) -> dict[str, Any]:
    answer: dict[str, Any] = client.post("/v1/chain/txs", json={"txs": [tx.raw.hex()]}).json()
    result: dict[str, Any] = answer["results"][0]
    return result


async def _give_receipt(host: str, port: int, relay_key: SigningKey) -> int:
    """Three envelopes reach a mailbox through the relay, whose owner receipts them."""
    owner = SigningKey.generate()
    mailbox = MailboxId.derive(owner.public_key.to_bytes())
    envelopes = [SealedEnvelope(mailbox, b"sealed %d" % i * 10).to_bytes() for i in range(3)]
    relay_id = bytes(NodeId.derive(relay_key.public_key.to_bytes()))
    with trio.fail_after(10):
        async with relay_session(host, port) as sender:
            await sender.put_many([(bytes(mailbox), e) for e in envelopes])
        async with relay_session(host, port, node_key=owner) as session:
            pushed = await session.pull(bytes(mailbox))
            receipt = DeliveryReceipt.sign(owner, relay_id, [i for i, _ in pushed])
            return await session.send_receipt(receipt.to_bytes())


async def _audit(host: str, port: int, root: bytes, index: int) -> AuditAnswer:
    with trio.fail_after(10):
        async with relay_session(host, port) as session:
            reply = await session.audit(root, index)
    return AuditAnswer(reply.entry_id, reply.receipt, reply.path)


def _proved_record(client: httpx.Client, path: str, key: bytes) -> dict[str, Any] | None:
    answer = client.get(path).json()
    value = None if answer["value"] is None else bytes.fromhex(answer["value"])
    root, proof = bytes.fromhex(answer["app_hash"]), bytes.fromhex(answer["proof"])
    assert verify_proof(root, key, value, proof)
    assert answer["proof_valid"]
    record: dict[str, Any] | None = answer["record"]
    return record


@pytest.mark.slow
def test_chat_validators_register_an_identity_and_a_relay_with_proofs(
    chat_net: tuple[dict[str, Any], list[httpx.Client], Path],
    wait_until: Callable[..., None],
) -> None:
    summary, apis, out = chat_net
    chain = summary["chat_chain"]
    status = apis[0].get("/v1/chain/status").json()
    assert (status["app"], status["chain_id"], len(status["validators"])) == ("chat", chain, 4)
    wait_until(lambda: apis[3].get("/v1/chain/status").json()["height"] >= 2, timeout=30)

    # A newcomer with no balance registers by proof of work alone (fee 0).
    newcomer = SigningKey.generate()
    pk = newcomer.public_key.to_bytes()
    doc = bytes(range(32))

    def register(work: bytes) -> Transaction:
        body = {"pow": work, "doc": doc}
        return Transaction.create(
            newcomer, chain_id=chain, nonce=0, fee=0, kind="register_identity", body=body
        )

    lazy = _submit(apis[0], register(b"\x00" * 8))
    work = solve_pow(chain, pk, POW_BITS)
    if lazy["accepted"]:  # one in 2**POW_BITS zero nonces is valid work: skip the check
        pytest.skip("the all-zero nonce happened to be valid work")
    assert lazy["error"] == "UnauthorizedError"
    assert "proof of work" in lazy["message"]
    result = _submit(apis[0], register(work))
    assert result["accepted"], result
    # The replay goes to another validator once gossip has brought it the original.
    wait_until(
        lambda: apis[1].get(f"/v1/chain/txs/{result['hash']}").json()["status"] != "unknown",
        timeout=30,
    )
    replay = _submit(apis[1], register(work))
    assert not replay["accepted"]
    assert replay["error"] in ("DuplicateTransactionError", "ReplayedNonceError")
    wait_until(
        lambda: apis[2].get(f"/v1/chain/txs/{result['hash']}").json()["status"] == "committed",
        timeout=30,
    )
    assert apis[2].get(f"/v1/chain/txs/{result['hash']}").json()["code"] == 0
    ident = bytes(IdentityId.derive(pk))
    for api in apis:
        wait_until(
            lambda api=api: api.get(f"/v1/chain/identities/{ident.hex()}").json()["record"],
            timeout=10,
        )
        record = _proved_record(api, f"/v1/chain/identities/{ident.hex()}", b"id/" + ident)
        assert record == {
            "key": pk.hex(),
            "document": doc.hex(),
            "version": 1,
            "guardians": [],
            "threshold": 0,
        }
    absent = bytes(32)
    assert _proved_record(apis[1], f"/v1/chain/identities/{absent.hex()}", b"id/" + absent) is None

    # A funded wallet registers, then lists a relay (fee 1).
    wallet = load_wallet(out / "wallets" / "account-0.wallet", PASSPHRASE.encode())
    wpk = wallet.public_key.to_bytes()
    txs = [
        Transaction.create(
            wallet,
            chain_id=chain,
            nonce=0,
            fee=0,
            kind="register_identity",
            body={"pow": solve_pow(chain, wpk, POW_BITS), "doc": doc},
        ),
        Transaction.create(
            wallet,
            chain_id=chain,
            nonce=1,
            fee=1,
            kind="register_relay",
            body={"endpoint": "127.0.0.1:7400", "region": "eu", "stake_ref": wpk},
        ),
    ]
    hashes = [_submit(apis[1], tx)["hash"] for tx in txs]
    wait_until(
        lambda: all(apis[0].get(f"/v1/chain/txs/{h}").json().get("code") == 0 for h in hashes),
        timeout=30,
    )
    wid = bytes(IdentityId.derive(wpk))
    wait_until(lambda: apis[3].get(f"/v1/chain/relays/{wid.hex()}").json()["record"], timeout=10)
    relay = _proved_record(apis[3], f"/v1/chain/relays/{wid.hex()}", b"relay/" + wid)
    assert relay == {
        "endpoint": "127.0.0.1:7400",
        "region": "eu",
        "stake_ref": wpk.hex(),
        "receipt_batches": 0,
    }
    # The relay whose node key is that identity's key takes a delivery receipt,
    # seals it into a batch and claims it (`dchat-node relay claim`); the directory
    # listing (what currency validators' probers read) shows the claimed batch, and
    # the relay backs any leaf of it with the receipt and a Merkle path.
    relay_dir = out / "relay"
    relay_dir.mkdir(mode=0o700)
    sealed_key = encrypt_with_passphrase(wallet.to_bytes(), PASSPHRASE, params=KdfParams.TESTING)
    (relay_dir / "node.key").write_bytes(sealed_key)
    relay_node = NodeProcess(relay_dir, "relay", passphrase=PASSPHRASE)
    relay_node.start()
    try:
        host, port = relay_node.info["link"].rsplit(":", 1)
        kept = trio.run(_give_receipt, host, int(port), wallet)
        assert kept == 3
        passfile = out / "passphrase"
        passfile.write_text(PASSPHRASE)
        args = ["relay", "claim", "--data-dir", str(relay_dir), "--node"]
        args += [str(out / summary["validators"][1]["dir"]), "--passphrase-file", str(passfile)]
        done = CliRunner().invoke(node_app, args)
        assert done.exit_code == 0, done.output
        claimed = json.loads(done.output)
        assert (claimed["claimed"], claimed["count"], claimed["receipts"]) == (True, 3, 1)
        assert claimed["committed"]

        def listed() -> dict[str, Any]:
            (entry,) = apis[2].get("/v1/chain/relays").json()["relays"]
            return dict(entry)

        wait_until(lambda: listed()["receipt_batches"] == 1, timeout=30)
        assert listed() == {
            "identity": wid.hex(),
            "endpoint": "127.0.0.1:7400",
            "region": "eu",
            "stake_ref": wpk.hex(),
            "receipt_batches": 1,
            "last_batch": {"root": claimed["root"], "count": 3},
        }
        root = bytes.fromhex(claimed["root"])
        answer = trio.run(_audit, host, int(port), root, 2)
        relay_id = bytes(NodeId.derive(wpk))
        assert check_audit(relay_id, root, 3, 2, answer)
        again = CliRunner().invoke(node_app, args)  # nothing new to claim
        assert json.loads(again.output)["claimed"] is False

        # The relay crashes and comes back, now claiming on its own (chat_node set):
        # the claimed batch is still backed, leaf by leaf, from the relay's database,
        # and the next receipts are sealed and claimed without the operator.
        relay_node.kill()
        validator_dir = out / summary["validators"][2]["dir"]
        (relay_dir / "dchat.toml").write_text(
            f'[node]\nrole = "relay"\nchat_node = {json.dumps(str(validator_dir))}\n'
            "[node.relay_claims]\ninterval = 1.0\nretry = 0.5\n"
        )
        relay_node = NodeProcess(relay_dir, "relay", passphrase=PASSPHRASE)
        relay_node.start()
        host, port = relay_node.info["link"].rsplit(":", 1)
        for index in range(3):
            answer = trio.run(_audit, host, int(port), root, index)
            assert check_audit(relay_id, root, 3, index, answer)
        assert trio.run(_give_receipt, host, int(port), wallet) == 3
        wait_until(lambda: listed()["receipt_batches"] == 2, timeout=30)
        batch = listed()["last_batch"]
        assert batch["count"] == 3
        assert batch["root"] != claimed["root"]
        answer = trio.run(_audit, host, int(port), bytes.fromhex(batch["root"]), 1)
        assert check_audit(relay_id, bytes.fromhex(batch["root"]), 3, 1, answer)
        headers = {"Authorization": f"Bearer {relay_node.info['token']}"}
        status_url = relay_node.info["url"] + "/v1/relay/status"

        def relay_receipts() -> dict[str, Any]:
            found: dict[str, Any] = httpx.get(status_url, headers=headers).json()["receipts"]
            return found

        # The chain can list the batch before the relay's own poll sees its claim
        # committed (it counts a claim only then): wait for the relay too.
        wait_until(lambda: relay_receipts()["auto_claims"] == 1, timeout=30)
        receipts = relay_receipts()
        assert (receipts["auto_claims"], receipts["unclaimed"], receipts["batches"]) == (1, 0, 2)
    finally:
        relay_node.kill()
    # Currency-only routes answer with a typed error on a chat validator.
    wrong = apis[0].get(f"/v1/chain/channels/{absent.hex()}")
    assert wrong.status_code == 404
    assert wrong.json()["error"]["code"] == "wrong_chain"
    assert apis[0].get("/v1/chain/identities/zz").status_code == 422
