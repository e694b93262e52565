"""Chain commands: ``dchat-node chain init-testnet`` and ``dchat wallet ...``.

The wallet signs transactions locally with a key from a passphrase-encrypted
wallet file (a validator's ``validator.key`` works too) and talks to a
validator's API, found through the validator's ``api.json`` (``--node DIR``).
Account answers come with a Merkle proof, which the wallet checks against the
app hash the node reports before printing anything.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console

from dchat_chain import Transaction, verify_proof
from dchat_core import DchatError
from dchat_crypto import KdfParams, SigningKey

from ._cli_common import fail as _fail
from ._cli_common import read_passphrase
from ._validator_app import account_key
from ._validator_keys import load_validator_keys, load_wallet
from ._validator_testnet import NetPlan, init_testnet

__all__ = ("chain_app", "wallet_app")

_out = Console()

chain_app = typer.Typer(help="Chain set-up and queries.", no_args_is_help=True)
wallet_app = typer.Typer(help="A currency-chain wallet.", no_args_is_help=True)

WalletFile = Annotated[Path, typer.Option("--wallet", help="Encrypted wallet or validator.key.")]
NodeDir = Annotated[
    Path,
    typer.Option("--node", envvar="DCHAT_CHAIN_NODE", help="A validator's data directory."),
]
PassFile = Annotated[Path | None, typer.Option(help="File holding the passphrase.")]


def _passphrase(path: Path | None) -> bytes:
    return read_passphrase(path, "DCHAT_PASSPHRASE", "unlock the keys")


@chain_app.command("init-testnet")
def init_testnet_command(
    out: Annotated[Path, typer.Option(help="Directory to write the testnet into.")],
    validators: Annotated[int, typer.Option(min=1, max=64)] = 4,
    accounts: Annotated[int, typer.Option(min=0, max=1000, help="Funded test wallets.")] = 4,
    block_interval: Annotated[float, typer.Option(min=0, max=60)] = 1.0,
    chain: Annotated[
        str, typer.Option(help="The chain the validators run: currency or chat.")
    ] = "currency",
    pow_bits: Annotated[
        int, typer.Option(min=0, max=64, help="Chat chain: identity registration work.")
    ] = 20,
    passphrase_file: PassFile = None,
    insecure_fast_kdf: Annotated[bool, typer.Option(hidden=True)] = False,
) -> None:
    """Write genesis documents, validator data dirs (keys encrypted) and funded wallets."""
    secret = _passphrase(passphrase_file)
    plan = NetPlan(
        validators=validators,
        accounts=accounts,
        block_interval=block_interval,
        chain=chain,
        pow_bits=pow_bits,
    )
    kdf = KdfParams.TESTING if insecure_fast_kdf else KdfParams.DEFAULT
    try:
        summary = init_testnet(out, plan, secret, kdf=kdf)
    except DchatError as exc:
        raise _fail(str(exc)) from None
    _out.print(f"wrote a {validators}-validator {chain} testnet to {out}")
    _out.print_json(json.dumps(summary))


# -- the wallet -----------------------------------------------------------------------


class _Api:
    """A validator's chain API, reached through its ``api.json``."""

    def __init__(self, node: Path) -> None:
        try:
            info = json.loads((node / "api.json").read_text())
        except (OSError, ValueError):
            raise _fail(f"no running node found in {node} (api.json missing)") from None
        self._url = str(info["url"])
        self._headers = {"Authorization": f"Bearer {info['token']}"}

    def call(self, method: str, path: str, body: Any = None) -> Any:
        # One short-lived client per call: a command makes a handful of calls,
        # and nothing is left open when it exits or fails.
        try:
            with httpx.Client(base_url=self._url, headers=self._headers, timeout=10.0) as http:
                response = http.request(method, path, json=body)
            data = response.json()
        except httpx.HTTPError as exc:
            raise _fail(f"the node did not answer: {type(exc).__name__}") from None
        except ValueError:
            raise _fail(f"the node answered HTTP {response.status_code} without JSON") from None
        if response.status_code >= 400:
            raise _fail(str(data.get("error", {}).get("message", response.text)))
        return data


def _account(api: _Api, owner: bytes) -> dict[str, Any]:
    answer: dict[str, Any] = api.call("GET", f"/v1/chain/accounts/{owner.hex()}")
    value = None if answer["value"] is None else bytes.fromhex(answer["value"])
    root, proof = bytes.fromhex(answer["app_hash"]), bytes.fromhex(answer["proof"])
    if not verify_proof(root, account_key(owner), value, proof):
        raise _fail("the node's answer does not match its Merkle proof")
    return answer


def _send(api: _Api, tx: Transaction, wait: bool) -> dict[str, Any] | None:
    """Submit ``tx``; with ``wait``, returns its committed status (code 0 or not)."""
    result = api.call("POST", "/v1/chain/txs", {"txs": [tx.raw.hex()]})["results"][0]
    if not result["accepted"]:
        raise _fail(f"refused: {result['error']}: {result['message']}")
    _out.print(f"submitted {result['hash']}", highlight=False)
    if not wait:
        return None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status: dict[str, Any] = api.call("GET", f"/v1/chain/txs/{result['hash']}")
        if status["status"] == "committed":
            outcome = (
                "ok" if status["code"] == 0 else f"failed (code {status['code']}): {status['log']}"
            )
            _out.print(f"committed at height {status['height']}: {outcome}", highlight=False)
            return status
        time.sleep(0.2)
    raise _fail("not committed within 60 s")


def _signed(
    api: _Api, key_file: Path, secret: bytes, kind: str, body: dict[str, Any], fee: int
) -> Transaction:
    try:
        key = load_wallet(key_file, secret)
    except DchatError as exc:
        raise _fail(str(exc)) from None
    return _signed_with(api, key, kind, body, fee)


def _signed_with(
    api: _Api, key: SigningKey, kind: str, body: dict[str, Any], fee: int
) -> Transaction:
    chain = api.call("GET", "/v1/chain/status")["chain_id"]
    # The pending nonce, so transactions sent before the previous one committed
    # queue behind it instead of reusing its nonce.
    nonce = _account(api, key.public_key.to_bytes())["next_nonce"]
    return Transaction.create(key, chain_id=chain, nonce=nonce, fee=fee, kind=kind, body=body)


@wallet_app.command("address")
def address(wallet: WalletFile, passphrase_file: PassFile = None) -> None:
    """Print the wallet's account key (hex)."""
    try:
        key = load_wallet(wallet, _passphrase(passphrase_file))
    except DchatError as exc:
        raise _fail(str(exc)) from None
    _out.print(key.public_key.to_bytes().hex(), highlight=False)


@wallet_app.command("balance")
def balance(
    node: NodeDir,
    account: Annotated[
        str | None, typer.Argument(help="Account key (hex); default: --wallet's.")
    ] = None,
    wallet: Annotated[Path | None, typer.Option("--wallet")] = None,
    passphrase_file: PassFile = None,
) -> None:
    """Show an account's balance, nonces and validator record, checked by Merkle proof."""
    if account is None:
        if wallet is None:
            raise _fail("give an ACCOUNT or --wallet")
        owner = load_wallet(wallet, _passphrase(passphrase_file)).public_key.to_bytes()
    else:
        try:
            owner = bytes.fromhex(account)
        except ValueError:
            raise _fail("ACCOUNT must be 64 hex digits") from None
    answer = _account(_Api(node), owner)
    shown = ("account", "balance", "nonce", "next_nonce", "height", "validator")
    _out.print_json(json.dumps({k: answer[k] for k in shown}))


@wallet_app.command("transfer")
def transfer(
    node: NodeDir,
    wallet: WalletFile,
    to: Annotated[str, typer.Argument(help="Recipient account key (hex).")],
    amount: Annotated[int, typer.Argument(min=1)],
    fee: Annotated[int, typer.Option(min=0)] = 1,
    wait: Annotated[bool, typer.Option(help="Wait until committed.")] = True,
    passphrase_file: PassFile = None,
) -> None:
    """Send AMOUNT to TO."""
    try:
        recipient = bytes.fromhex(to)
    except ValueError:
        raise _fail("TO must be 64 hex digits") from None
    if len(recipient) != 32:
        raise _fail("TO must be 64 hex digits")
    api = _Api(node)
    body = {"to": recipient, "amount": amount}
    _send(api, _signed(api, wallet, _passphrase(passphrase_file), "transfer", body, fee), wait)


@wallet_app.command("stake")
def stake(
    node: NodeDir,
    wallet: Annotated[Path, typer.Option("--wallet", help="The validator's validator.key.")],
    amount: Annotated[int, typer.Argument(min=1)],
    fee: Annotated[int, typer.Option(min=0)] = 1,
    wait: Annotated[bool, typer.Option(help="Wait until committed.")] = True,
    passphrase_file: PassFile = None,
) -> None:
    """Bond AMOUNT more to the validator whose key file is --wallet."""
    secret = _passphrase(passphrase_file)
    try:
        keys = load_validator_keys(wallet, secret)
    except DchatError as exc:
        raise _fail(str(exc)) from None
    api = _Api(node)
    body: dict[str, Any] = {"amount": amount}
    if _account(api, keys.account_public)["validator"] is None:
        # A first stake registers the validator: its BLS key with the proof of possession.
        body.update(bls=keys.bls.public_key.to_bytes(), pop=keys.bls.prove_possession().to_bytes())
    _send(api, _signed(api, wallet, secret, "stake", body, fee), wait)


@wallet_app.command("status")
def chain_status(node: NodeDir) -> None:
    """Show the chain as the node sees it (height, last block, validators, peers)."""
    _out.print_json(json.dumps(_Api(node).call("GET", "/v1/chain/status")))
