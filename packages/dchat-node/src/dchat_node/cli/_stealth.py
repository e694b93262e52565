"""``dchat wallet stealth-address | pay --stealth | scan | sweep``: stealth payments.

The wallet's stealth keys derive from its key (``dchat_chain.lowlevel.StealthKeys``);
``stealth-address`` prints the meta-address to publish (``dchat-stealth:...``).
``pay --stealth TO AMOUNT`` sends AMOUNT to a fresh one-time account of TO
with the memo its owner finds it by; TO is a meta-address, or a contact's name
or id, whose meta-address the user node (``dchat --data-dir``) reads from the
contact's verified card. ``scan`` walks the committed blocks the
scan has not seen (each block's transactions checked against its certified
header by the scan's own light client), keeps what is ours in ``WALLET.stealth``
(sealed under the wallet key) and shows each one-time account's balance, read
by the wallet's light client with a Merkle proof. ``sweep`` moves every found
balance (less the fee) to the account TO, signed by the one-time keys (the
user names TO: sweeping several to one account links them). ``sweep TO
--identity ID`` sweeps instead what the user node (``dchat --data-dir``)
found for one of its burners (or for its identity, by its id): a burner's card
publishes its own meta-address and the node's scan checks every live
burner's keys. See docs/protocol.md §43 and docs/rationale.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from dchat_chain import Transaction
from dchat_chain.lowlevel import (
    META_ADDRESS_PREFIX,
    StealthMetaAddress,
    genesis_anchor,
    stealth_payment,
)
from dchat_core import DchatError

from ..validator._keys import CURRENCY_GENESIS, VALIDATOR_GENESIS, load_wallet
from ._chain import (
    GenesisFile,
    LightDir,
    NodeDir,
    PassFile,
    WalletFile,
    _account,
    _Api,
    _passphrase,
    _read_genesis,
    _send,
    _signed_with,
    stealth_file,
)
from ._common import fail as _fail
from ._common import key_bytes

if TYPE_CHECKING:
    from dchat_chain.lowlevel import StealthFind, StealthScan, StealthScanFile
    from dchat_crypto import SigningKey

__all__ = ("pay", "scan", "stealth_address", "sweep")

_out = Console()


def _key(wallet: Path, passphrase_file: Path | None) -> SigningKey:
    try:
        return load_wallet(wallet, _passphrase(passphrase_file))
    except DchatError as exc:
        raise _fail(str(exc)) from None


def stealth_address(wallet: WalletFile, passphrase_file: PassFile = None) -> None:
    """Print the wallet's stealth meta-address (publish it; payments to it are unlinkable)."""
    keys = stealth_file(wallet, _key(wallet, passphrase_file)).keys
    _out.print(keys.meta_address.to_text(), highlight=False, soft_wrap=True)


def _meta_address(ctx: typer.Context, to: str) -> StealthMetaAddress:
    """TO's meta-address: TO itself, or the one on the contact TO's verified card."""
    try:
        if not to.startswith(META_ADDRESS_PREFIX):
            from dchat_sdk import RemoteClient

            data_dir: Path = ctx.find_root().obj
            with RemoteClient.from_data_dir(data_dir) as client:
                to = client.stealth_address(to)
        return StealthMetaAddress.from_text(to)
    except DchatError as exc:
        raise _fail(f"TO: {exc}") from None


def pay(
    ctx: typer.Context,
    node: NodeDir,
    wallet: WalletFile,
    to: Annotated[
        str,
        typer.Argument(
            help="A dchat-stealth: meta-address, or a contact (name or id) whose card "
            "publishes one (with --stealth)."
        ),
    ],
    amount: Annotated[int, typer.Argument(min=1)],
    stealth: Annotated[bool, typer.Option("--stealth", help="Pay a one-time account.")] = False,
    fee: Annotated[int, typer.Option(min=0)] = 1,
    wait: Annotated[bool, typer.Option(help="Wait until committed.")] = True,
    passphrase_file: PassFile = None,
    genesis: GenesisFile = None,
    light_dir: LightDir = None,
) -> None:
    """Pay AMOUNT to a fresh one-time account of TO, a meta-address or contact (``--stealth``)."""
    if not stealth:
        raise _fail("only --stealth payments here; `dchat wallet transfer` pays an account")
    meta = _meta_address(ctx, to.strip())
    key = _key(wallet, passphrase_file)
    api = _Api(node, genesis, light_dir, wallet)
    account, memo = stealth_payment(meta)
    body = {"to": account, "amount": amount, "stealth": memo.to_bytes()}
    status = _send(api, _signed_with(api, key, "transfer", body, fee), wait)
    if status is not None and status["code"] != 0:
        raise _fail("the payment failed on chain")
    _out.print(f"paid {amount} to one-time account {account.hex()}", highlight=False)


def _scan_genesis(api: _Api, node: Path, pinned: Path | None) -> bytes:
    """The genesis a new scan starts from: the wallet's trust anchor, checked."""
    if pinned is None:
        pinned = node / VALIDATOR_GENESIS
        pinned = pinned if pinned.exists() else node / CURRENCY_GENESIS
    genesis = _read_genesis(pinned)
    try:
        chain_id, validators = genesis_anchor(genesis)
    except DchatError as exc:
        raise _fail(str(exc)) from None
    if chain_id != api.chain_id or validators.hash() != api.reader.reader.anchor:
        raise _fail("the genesis is not the one the wallet's light client trusts")
    return genesis


def _run_scan(api: _Api, file: StealthScanFile, node: Path, pinned: Path | None) -> StealthScan:
    try:
        found = file.path.exists()
        state = file.load(None if found else _scan_genesis(api, node, pinned))
        tip = int(api.call("GET", "/v1/chain/status")["height"])
        state.scan_to(tip)
        with _out.status(f"scanning blocks {state.height + 1}..{tip}"):
            try:
                while (request := state.next_request()) is not None:
                    state.receive(api.call("GET", request))
            finally:
                file.save(state)  # what verified stays scanned, also after a refusal
    except DchatError as exc:
        raise _fail(f"scan refused: {type(exc).__name__}: {exc}") from None
    return state


def _balances(api: _Api, finds: list[StealthFind]) -> list[dict[str, Any]]:
    rows = []
    for find in finds:
        answer = _account(api, find.account)
        rows.append(
            {
                "account": find.account.hex(),
                "height": find.height,
                "balance": answer["balance"],
                "next_nonce": answer["next_nonce"],
            }
        )
    return rows


def scan(
    node: NodeDir,
    wallet: WalletFile,
    passphrase_file: PassFile = None,
    genesis: GenesisFile = None,
    light_dir: LightDir = None,
) -> None:
    """Scan new blocks for stealth payments to this wallet; show their proven balances."""
    key = _key(wallet, passphrase_file)
    api = _Api(node, genesis, light_dir, wallet)
    state = _run_scan(api, stealth_file(wallet, key), node, genesis)
    rows = _balances(api, state.finds)
    total = sum(r["balance"] for r in rows)
    doc = {"scanned_to": state.height, "accounts": rows, "stealth_balance": total}
    _out.print_json(json.dumps(doc))


_NodeOpt = Annotated[
    Path | None,
    typer.Option("--node", envvar="DCHAT_CHAIN_NODE", help="A validator's data directory."),
]
_WalletOpt = Annotated[
    Path | None, typer.Option("--wallet", help="Encrypted wallet or validator.key.")
]
_IdentityOpt = Annotated[
    str | None,
    typer.Option(
        "--identity",
        help="A burner id (or your identity's id): sweep what the user node of "
        "`dchat --data-dir` found for it, instead of --wallet's.",
    ),
]


def _sweep_on_node(ctx: typer.Context, to: str, fee: int, identity: str) -> None:
    from dchat_sdk import RemoteClient

    data_dir: Path = ctx.find_root().obj
    try:
        with RemoteClient.from_data_dir(data_dir) as client:
            reply = client.stealth_sweep(to, fee=fee, identity=identity)
    except DchatError as exc:
        raise _fail(str(exc)) from None
    _out.print(f"swept {reply['swept']} to {reply['to']}", highlight=False)


def sweep(
    ctx: typer.Context,
    to: Annotated[
        str,
        typer.Argument(
            help="Account to sweep to (hex). Sweeping several to one account, or to a "
            "published one, links them (docs/rationale.md)."
        ),
    ],
    node: _NodeOpt = None,
    wallet: _WalletOpt = None,
    identity: _IdentityOpt = None,
    fee: Annotated[int, typer.Option(min=0)] = 1,
    passphrase_file: PassFile = None,
    genesis: GenesisFile = None,
    light_dir: LightDir = None,
) -> None:
    """Move every stealth balance found (less the fee) to TO, signed by the one-time keys."""
    if (wallet is None) == (identity is None):
        raise _fail("name --wallet (its stealth accounts) or --identity (a burner's, on the node)")
    if identity is not None:
        key_bytes(to, "TO")
        _sweep_on_node(ctx, to, fee, identity)
        return
    assert wallet is not None
    if node is None:
        raise _fail("--wallet needs --node (a validator's data directory)")
    key = _key(wallet, passphrase_file)
    target = key_bytes(to, "TO")
    api = _Api(node, genesis, light_dir, wallet)
    file = stealth_file(wallet, key)
    state = _run_scan(api, file, node, genesis)
    moved = 0
    for find, row in zip(state.finds, _balances(api, state.finds), strict=True):
        if row["balance"] <= fee:
            continue
        one_time = file.keys.spending_key(find.account, find.memo)
        value = row["balance"] - fee
        tx = Transaction.create(
            one_time, chain_id=api.chain_id, nonce=row["next_nonce"], fee=fee,
            kind="transfer", body={"to": target, "amount": value},
        )  # fmt: skip
        status = _send(api, tx, True)
        if status is not None and status["code"] == 0:
            moved += value
    _out.print(f"swept {moved} to {target.hex()}", highlight=False)
