"""Chain commands: ``dchat-node chain init-testnet`` and ``dchat wallet ...``.

The wallet signs transactions locally with a key from a passphrase-encrypted
wallet file (a validator's ``validator.key`` works too) and talks to a
validator's API, found through the validator's ``api.json`` (``--node DIR``).
The node is not trusted: account answers are checked by a light client
(:class:`dchat_chain.lowlevel.LightReader`, :mod:`._light_reader` keeps its
state) against headers it verified by their commit
certificates from the chain's genesis validator set. The genesis comes from
``--genesis FILE`` or, on first use only, from the node's data directory
(trust on first use, see ``docs/rationale.md``); the verified state is kept in
``--light-dir`` (default: next to ``--wallet``, else ``~/.dchat/light``).
"""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import httpx
import typer
from rich.console import Console

from dchat_chain import Transaction
from dchat_chain.lowlevel import (
    NetPlan,
    StealthScanFile,
    WalletLightReader,
    account_key,
    genesis_anchor,
    light_state_path,
)
from dchat_core import DchatError
from dchat_crypto import KdfParams, SigningKey

from ..validator._keys import (
    CURRENCY_GENESIS,
    VALIDATOR_GENESIS,
    load_validator_keys,
    load_wallet,
)
from ._common import err_console, key_bytes, read_passphrase
from ._common import fail as _fail
from ._testnet import init_testnet

if TYPE_CHECKING:
    import ssl
    from collections.abc import Callable

__all__ = ("chain_app", "wallet_app")

T = TypeVar("T")

_out = Console()

chain_app = typer.Typer(help="Chain set-up and queries.", no_args_is_help=True)
wallet_app = typer.Typer(help="A currency-chain wallet.", no_args_is_help=True)

WalletFile = Annotated[Path, typer.Option("--wallet", help="Encrypted wallet or validator.key.")]
NodeDir = Annotated[
    Path,
    typer.Option("--node", envvar="DCHAT_CHAIN_NODE", help="A validator's data directory."),
]
PassFile = Annotated[Path | None, typer.Option(help="File holding the passphrase.")]
GenesisFile = Annotated[
    Path | None,
    typer.Option(
        "--genesis",
        envvar="DCHAT_GENESIS",
        help="The chain's genesis file, the light client's trust anchor "
        "(default: the node's, trusted on first use).",
    ),
]
LightDir = Annotated[
    Path | None,
    typer.Option(
        "--light-dir",
        envvar="DCHAT_LIGHT_DIR",
        help="Where verified chain headers are kept (default: next to --wallet).",
    ),
]


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
    plan = NetPlan(validators=validators, accounts=accounts, chain=chain, pow_bits=pow_bits)
    kdf = KdfParams.TESTING if insecure_fast_kdf else KdfParams.DEFAULT
    try:
        summary = init_testnet(out, plan, secret, kdf=kdf, block_interval=block_interval)
    except DchatError as exc:
        raise _fail(str(exc)) from None
    _out.print(f"wrote a {validators}-validator {chain} testnet to {out}")
    _out.print_json(json.dumps(summary))


# -- the wallet -----------------------------------------------------------------------


class _Api:
    """A validator's chain API, reached through its ``api.json``, read through a light client."""

    def __init__(
        self,
        node: Path,
        genesis: Path | None = None,
        light_dir: Path | None = None,
        wallet: Path | None = None,
    ) -> None:
        try:
            info = json.loads((node / "api.json").read_text())
        except (OSError, ValueError):
            raise _fail(f"no running node found in {node} (api.json missing)") from None
        self._url = str(info["url"])
        self._headers = {"Authorization": f"Bearer {info['token']}"}
        self._node, self._genesis = node, genesis
        default = Path.home() / ".dchat" / "light" if wallet is None else wallet.parent
        self._light_dir = light_dir or default
        self._reader: WalletLightReader | None = None

    @property
    def reader(self) -> WalletLightReader:
        """The light client of the node's chain (opened on first use)."""
        if self._reader is None:
            self._reader = self._open_reader()
        return self._reader

    def _open_reader(self) -> WalletLightReader:
        genesis: bytes | None = None
        if self._genesis is not None:
            pinned = genesis = _read_genesis(self._genesis)
            chain = _guarded(lambda: genesis_anchor(pinned)[0])
        else:
            chain = str(self.call("GET", "/v1/chain/status").get("chain_id", ""))
        path = light_state_path(self._light_dir, chain)
        if genesis is None and not path.exists():
            found = self._node / VALIDATOR_GENESIS
            if not found.exists():
                found = self._node / CURRENCY_GENESIS
            err_console.print(
                f"note: no verified state for chain {chain!r} yet; trusting {found} "
                "as its genesis (first use; pin one with --genesis)",
                highlight=False,
                soft_wrap=True,
            )
            genesis = _read_genesis(found)
        return _guarded(
            lambda: WalletLightReader.open(lambda p: self.call("GET", p), path, genesis)
        )

    @property
    def chain_id(self) -> str:
        """The chain id the light client was anchored at (not what the node says)."""
        return self.reader.client.chain_id

    def proven(self, path: str, key: bytes) -> tuple[dict[str, Any], bytes | None]:
        """GET a proven answer for ``key``; returns it with the value the light client verified."""
        try:
            doc, value, _ = self.reader.read(path, key)
        except DchatError as exc:
            raise _fail(f"refused the node's answer: {type(exc).__name__}: {exc}") from None
        return doc, value

    def call(self, method: str, path: str, body: Any = None) -> Any:
        # One short-lived client per call: a command makes a handful of calls,
        # and nothing is left open when it exits or fails. The TLS context is
        # made once: building one loads the whole CA bundle (tens of ms, far
        # more on a loaded machine), and a light-client read makes several calls.
        try:
            with httpx.Client(
                base_url=self._url, headers=self._headers, timeout=10.0, verify=_tls_context()
            ) as http:
                response = http.request(method, path, json=body)
            data = response.json()
        except httpx.HTTPError as exc:
            raise _fail(f"the node did not answer: {type(exc).__name__}") from None
        except ValueError:
            raise _fail(f"the node answered HTTP {response.status_code} without JSON") from None
        if response.status_code >= 400:
            raise _fail(str(data.get("error", {}).get("message", response.text)))
        return data


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The default TLS context of the API clients (httpx's: the CA bundle it ships)."""
    return httpx.create_ssl_context()


def _read_genesis(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _fail(f"cannot read the genesis {path}: {exc.strerror}") from None


def _guarded(action: Callable[[], T]) -> T:
    try:
        return action()
    except DchatError as exc:
        raise _fail(f"{type(exc).__name__}: {exc}") from None


def stealth_file(wallet: Path, key: SigningKey) -> StealthScanFile:
    """The wallet's stealth scan, ``WALLET.stealth`` (sealed under a key from the wallet key)."""
    return StealthScanFile(wallet.with_name(wallet.name + ".stealth"), key.to_bytes())


def _account(api: _Api, owner: bytes) -> dict[str, Any]:
    """The account's answer, with balance and nonce taken from the verified value."""
    doc, value = api.proven(f"/v1/chain/accounts/{owner.hex()}", account_key(owner))
    if value is not None and len(value) != 16:
        raise _fail("refused the node's answer: an account record is 16 bytes")
    balance, nonce = (
        (0, 0) if value is None else (int.from_bytes(value[:8]), int.from_bytes(value[8:]))
    )
    hint = doc.get("next_nonce")  # not covered by the proof: a lie only gets the tx refused
    next_nonce = hint if isinstance(hint, int) and hint >= nonce else nonce
    return {
        **doc,
        "account": owner.hex(),
        "balance": balance,
        "nonce": nonce,
        "next_nonce": next_nonce,
    }


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
            _await_certified(api, int(status["height"]), deadline)
            return status
        time.sleep(0.2)
    raise _fail("not committed within 60 s")


def _await_certified(api: _Api, height: int, deadline: float) -> None:
    """Wait until a header proves the state after ``height`` (the next block), best effort."""
    while time.monotonic() < deadline:
        certified = api.call("GET", "/v1/chain/status").get("certified_height")
        if not isinstance(certified, int) or certified >= height:
            return
        time.sleep(0.1)


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
    chain = api.chain_id
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
    genesis: GenesisFile = None,
    light_dir: LightDir = None,
) -> None:
    """Show an account's balance and nonce, verified by light client and Merkle proof.

    ``next_nonce`` and ``validator`` are the node's word (not covered by the proof).
    With --wallet, ``stealth_balance`` sums the one-time accounts the last
    ``dchat wallet scan`` found (each balance proven too).
    """
    key = None
    if account is None:
        if wallet is None:
            raise _fail("give an ACCOUNT or --wallet")
        key = load_wallet(wallet, _passphrase(passphrase_file))
        owner = key.public_key.to_bytes()
    else:
        owner = key_bytes(account, "ACCOUNT")
    api = _Api(node, genesis, light_dir, wallet)
    answer = _account(api, owner)
    shown = ("account", "balance", "nonce", "next_nonce", "height", "validator")
    doc = {k: answer[k] for k in shown}
    if key is not None and wallet is not None:
        scan = stealth_file(wallet, key)
        if scan.path.exists():  # the one-time accounts `dchat wallet scan` found
            finds = _guarded(lambda: scan.load(None).finds)
            doc["stealth_balance"] = sum(int(_account(api, f.account)["balance"]) for f in finds)
    _out.print_json(json.dumps(doc))


@wallet_app.command("transfer")
def transfer(
    node: NodeDir,
    wallet: WalletFile,
    to: Annotated[str, typer.Argument(help="Recipient account key (hex).")],
    amount: Annotated[int, typer.Argument(min=1)],
    fee: Annotated[int, typer.Option(min=0)] = 1,
    wait: Annotated[bool, typer.Option(help="Wait until committed.")] = True,
    passphrase_file: PassFile = None,
    genesis: GenesisFile = None,
    light_dir: LightDir = None,
) -> None:
    """Send AMOUNT to TO."""
    recipient = key_bytes(to, "TO")
    api = _Api(node, genesis, light_dir, wallet)
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
    genesis: GenesisFile = None,
    light_dir: LightDir = None,
) -> None:
    """Bond AMOUNT more to the validator whose key file is --wallet."""
    secret = _passphrase(passphrase_file)
    try:
        keys = load_validator_keys(wallet, secret)
    except DchatError as exc:
        raise _fail(str(exc)) from None
    api = _Api(node, genesis, light_dir, wallet)
    body: dict[str, Any] = {"amount": amount}
    if _account(api, keys.account_public)["validator"] is None:
        # A first stake registers the validator: its BLS key with the proof of possession.
        body.update(bls=keys.bls.public_key.to_bytes(), pop=keys.bls.prove_possession().to_bytes())
    _send(api, _signed(api, wallet, secret, "stake", body, fee), wait)


@wallet_app.command("status")
def chain_status(node: NodeDir) -> None:
    """Show the chain as the node sees it (height, last block, validators, peers)."""
    _out.print_json(json.dumps(_Api(node).call("GET", "/v1/chain/status")))
