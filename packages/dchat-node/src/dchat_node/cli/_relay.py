"""``dchat-node relay register|bond|unbond|status|claim``: a relay operator's chain commands.

The operator is an identity on the chat chain: the key in ``--wallet`` (a
passphrase-encrypted wallet file, as for ``dchat wallet``). ``register``
registers that identity first if the chain does not know it (paying the
chain's proof of work, read by proof from its ``meta/chain`` record; sent just
ahead of the listing, so both commit in one block), then lists the relay whose
data directory is ``--relay-dir``: its link key is unlocked from ``node.key``
with the same passphrase, so users can pin it, and its endpoint defaults to
the address the running relay listens on.
``bond``/``unbond`` move relay stake on the currency chain under the same key
(the default stake reference of a listing).

``status`` puts side by side what the relay reports of itself
(``GET /v1/relay/status``: load and quota use) and what the chains say, each
value verified by the light client: the listing, the bond, the delivery and
vouch counters, the uptime score and the proven deliveries so far this epoch
(the lower medians of the validators' reports, as the payout computes them),
the stake account's balance, into which epoch rewards are paid, and the
rewards earned so far by uptime and by delivery (the chain's ``earn/``
record).

Transactions are signed locally and submitted to a validator found by its
data directory (``--chat-node``/``--currency-node``), which is not trusted:
every answer the commands rely on is proven (see :mod:`._chain`).

A relay keeps the delivery receipts its users' nodes give it (in its database,
for validators' audits). A relay whose config names ``chat_node`` claims them
on its own (``[node.relay_claims]``); ``claim`` does it by hand: it asks the
running relay (``--data-dir``, through its ``api.json``) to seal the receipts
taken since the last seal into a Merkle batch, claims that batch on the chat
chain as ``receipt_batch {root, count}``, signed with the key of the chat-chain
identity that listed the relay (the chain accepts batches only from a listed
relay's identity): the operator's ``--wallet`` for a relay listed with ``relay
register``, else the relay's node key (unlocked with the node passphrase),
sent to the chat validator of ``--node``, and, once the claim is committed
(within 60 s), tells the relay the batch was claimed. Every claimed batch
stays auditable across restarts until a later claim is past the audit window.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from dchat_chain import Transaction
from dchat_chain.lowlevel import (
    DirectoryAnswerError,
    account_key,
    decode_relay_bond,
    decode_relay_earnings,
    decode_relay_listing,
    epoch_delivered,
    epoch_score,
    relay_bond_key,
    relay_earnings_key,
    relay_listing_key,
    solve_pow,
)
from dchat_core import IdentityId, NodeId, canonical_decode

from ..relay._role import load_node_key
from ..validator._keys import load_wallet
from ._chain import (
    GenesisFile,
    LightDir,
    NodeDir,
    PassFile,
    _Api,
    _passphrase,
    _send,
    _signed_with,
)
from ._common import err_console, guard
from ._common import fail as _fail

if TYPE_CHECKING:
    from dchat_chain.lowlevel import RelayListing
    from dchat_crypto import SigningKey

__all__ = ("relay_app",)

_out = Console()
relay_app = typer.Typer(
    help="Operate a relay: list it, bond stake, watch it.", no_args_is_help=True
)

ChatNode = Annotated[
    Path, typer.Option("--chat-node", help="A chat-chain validator's data directory.")
]
CurrencyNode = Annotated[
    Path, typer.Option("--currency-node", help="A currency-chain validator's data directory.")
]
Wallet = Annotated[Path, typer.Option("--wallet", help="The operator's encrypted key file.")]
Fee = Annotated[int, typer.Option(min=0)]
Wait = Annotated[bool, typer.Option(help="Wait until committed.")]


def _state_path(key: bytes) -> str:
    return f"/v1/chain/state/{key.hex()}"


def _record(api: _Api, path: str, key: bytes) -> Any:
    """The decoded proven value at ``key`` (None: absent)."""
    _, value = api.proven(path, key)
    return None if value is None else canonical_decode(value)


def _committed(api: _Api, key: SigningKey, kind: str, body: dict[str, Any], fee: int) -> None:
    """Sign, submit and wait; a transaction the chain refuses is an error."""
    status = _send(api, _signed_with(api, key, kind, body, fee), True)
    if status is not None and status["code"] != 0:
        raise _fail(f"{kind} failed on chain: {status['log']}")


def _ensure_identity(api: _Api, key: SigningKey) -> bytes:
    """The operator's identity id, its registration submitted first if the chain lacks it.

    The registration is not waited for: the listing signed next takes the
    following nonce, so both commit together, in order (one block's wait, not
    two); if the registration fails on chain, so does the listing, and
    :func:`_committed` reports it.
    """
    public = key.public_key.to_bytes()
    identity = bytes(IdentityId.derive(public))
    if _record(api, f"/v1/chain/identities/{identity.hex()}", b"id/" + identity) is not None:
        return identity
    meta = _record(api, _state_path(b"meta/chain"), b"meta/chain")
    bits = int(meta["params"]["pow_bits"]) if isinstance(meta, dict) else 20
    err_console.print(f"registering the operator identity ({bits} bits of proof of work)")
    work = solve_pow(api.chain_id, public, bits)
    body = {"pow": work, "doc": bytes(32)}
    _send(api, _signed_with(api, key, "register_identity", body, 0), False)
    return identity


def _relay_key(relay_dir: Path, secret: bytes) -> SigningKey:
    if not (relay_dir / "node.key").exists():
        raise _fail(f"{relay_dir} holds no relay node key (start the relay once first)")
    return guard(lambda: load_node_key(relay_dir / "node.key", secret))


def _relay_info(relay_dir: Path) -> dict[str, Any]:
    try:
        info: dict[str, Any] = json.loads((relay_dir / "api.json").read_text())
    except (OSError, ValueError):
        raise _fail(f"no running relay found in {relay_dir} (api.json missing)") from None
    return info


def _account_arg(text: str | None, default: bytes) -> bytes:
    if text is None:
        return default
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise _fail("an account or identity is 64 hex digits")
    return raw


@relay_app.command("register")
def register(
    chat_node: ChatNode,
    wallet: Wallet,
    relay_dir: Annotated[Path, typer.Option("--relay-dir", help="The relay's data directory.")],
    region: Annotated[str, typer.Option(help="Where the relay runs, e.g. eu-west.")],
    endpoint: Annotated[
        str | None, typer.Option(help="HOST:PORT users dial (default: the running relay's).")
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option(help="A network tag, e.g. as:64500 (repeatable).")
    ] = None,
    label: Annotated[str, typer.Option(help="The operator's name, shown to users.")] = "",
    stake_ref: Annotated[
        str | None, typer.Option(help="Currency account bonding for it (default: --wallet's).")
    ] = None,
    fee: Fee = 1,
    passphrase_file: PassFile = None,
    genesis: GenesisFile = None,
    light_dir: LightDir = None,
) -> None:
    """List (or update) the relay in --relay-dir on the chat chain, operated by --wallet."""
    secret = _passphrase(passphrase_file)
    key = guard(lambda: load_wallet(wallet, secret))
    node_key = _relay_key(relay_dir, secret).public_key.to_bytes()
    where = endpoint or str(_relay_info(relay_dir).get("link") or "")
    tags = sorted({t.lower() for t in tag or []})
    api = _Api(chat_node, genesis, light_dir, wallet)
    identity = _ensure_identity(api, key)
    body = {
        "endpoint": where,
        "region": region,
        "stake_ref": _account_arg(stake_ref, key.public_key.to_bytes()),
        "node": node_key,
        "tags": tags,
        "label": label,
    }
    _committed(api, key, "register_relay", body, fee)
    node = NodeId.derive(node_key)
    text = f"listed relay {node}@{where} operated by {IdentityId(identity)}"
    _out.print(text, highlight=False, soft_wrap=True)


def _stake(kind: str, node: Path, wallet: Path, amount: int, fee: int, pf: Path | None) -> None:
    secret = _passphrase(pf)
    key = guard(lambda: load_wallet(wallet, secret))
    api = _Api(node, None, None, wallet)
    _committed(api, key, kind, {"amount": amount}, fee)
    owner = key.public_key.to_bytes()
    _out.print(f"relay bond of {owner.hex()}: {_bond(api, owner)}", highlight=False, soft_wrap=True)


def _bond(api: _Api, account: bytes) -> int:
    """``account``'s relay bond, verified."""
    key = relay_bond_key(account)
    return decode_relay_bond(api.proven(_state_path(key), key)[1])


def _stake_command(name: str, kind: str, doc: str) -> None:
    def command(
        currency_node: CurrencyNode,
        wallet: Wallet,
        amount: Annotated[int, typer.Argument(min=1)],
        fee: Fee = 1,
        passphrase_file: PassFile = None,
    ) -> None:
        _stake(kind, currency_node, wallet, amount, fee, passphrase_file)

    command.__doc__ = doc
    relay_app.command(name)(command)


_stake_command(
    "bond", "relay_bond", "Bond AMOUNT of --wallet's funds as relay stake (the listing's stake)."
)
_stake_command(
    "unbond", "relay_unbond", "Start unbonding AMOUNT of relay stake (paid back after unbonding)."
)


def _listing_json(listing: RelayListing) -> dict[str, Any]:
    return {
        "operator": str(IdentityId(listing.identity)),
        "address": listing.address,
        "region": listing.region,
        "tags": list(listing.tags),
        "label": listing.label,
        "stake_ref": listing.stake_ref.hex(),
    }


def _chat_side(api: _Api, identity: bytes) -> tuple[dict[str, Any], RelayListing | None]:
    key = relay_listing_key(identity)
    _, value = api.proven(f"/v1/chain/relays/{identity.hex()}", key)
    if value is None:
        return {"listed": False}, None
    try:
        listing = decode_relay_listing(identity, value)
    except DirectoryAnswerError as exc:
        raise _fail(str(exc)) from None
    rep = _record(api, _state_path(b"rep/" + identity), b"rep/" + identity) or {}
    counters = {"delivered": rep.get("d", 0), "vouches": rep.get("v", 0)}
    return {"listed": True, **_listing_json(listing), **counters}, listing


def _currency_side(api: _Api, account: bytes) -> dict[str, Any]:
    bond = _bond(api, account)
    doc, value = api.proven(f"/v1/chain/accounts/{account.hex()}", account_key(account))
    balance = 0 if value is None else int.from_bytes(value[:8])
    meta = _record(api, _state_path(b"meta/chain"), b"meta/chain") or {}
    epoch_blocks = int(meta.get("params", {}).get("epoch_blocks", 0) or 0)
    result = {"bond": bond, "balance": balance, "height": doc.get("height")}
    if epoch_blocks:
        epoch = int(doc["height"]) // epoch_blocks
        tag = epoch.to_bytes(8, "big")
        reporters = _record(api, _state_path(b"reporters/" + tag), b"reporters/" + tag) or []
        reports = []
        for reporter in reporters:
            key = b"report/" + tag + b"/" + reporter
            reports.append(api.proven(_state_path(key), key)[1])
        score, delivered = epoch_score(reports, account), epoch_delivered(reports, account)
        result |= {"epoch": epoch, "score": score, "delivered": delivered, "reports": len(reports)}
    earned = relay_earnings_key(account)
    try:
        result["earnings"] = decode_relay_earnings(api.proven(_state_path(earned), earned)[1])
    except DirectoryAnswerError as exc:
        raise _fail(str(exc)) from None
    return result


@relay_app.command("status")
def status(
    relay_dir: Annotated[
        Path | None, typer.Option("--relay-dir", help="The relay's data directory.")
    ] = None,
    chat_node: Annotated[Path | None, typer.Option("--chat-node")] = None,
    currency_node: Annotated[Path | None, typer.Option("--currency-node")] = None,
    wallet: Annotated[Path | None, typer.Option("--wallet")] = None,
    operator: Annotated[
        str | None, typer.Option(help="The operator's identity id (hex; default: --wallet's).")
    ] = None,
    passphrase_file: PassFile = None,
    light_dir: LightDir = None,
) -> None:
    """Show a relay's load, quota use, receipts and, verified, listing, bond, score, earnings."""
    report: dict[str, Any] = {}
    if relay_dir is not None:
        info = _relay_info(relay_dir)
        report["relay"] = _Api(relay_dir).call("GET", "/v1/relay/status")
        report["relay"]["api"] = info.get("url")
    owner: bytes | None = None
    if wallet is not None:
        secret = _passphrase(passphrase_file)
        owner = guard(lambda: load_wallet(wallet, secret)).public_key.to_bytes()
    identity = _account_arg(operator, bytes(IdentityId.derive(owner)) if owner else b"")
    listing = None
    if chat_node is not None:
        if len(identity) != 32:
            raise _fail("give --operator or --wallet to read the chat chain")
        report["directory"], listing = _chat_side(
            _Api(chat_node, None, light_dir, wallet), identity
        )
    if currency_node is not None:
        account = listing.stake_ref if listing is not None else owner
        if account is None:
            raise _fail("give --wallet, or --chat-node to find the stake account")
        api = _Api(currency_node, None, light_dir, wallet)
        report["stake"] = {"account": account.hex(), **_currency_side(api, account)}
    _out.print_json(json.dumps(report))


RelayDir = Annotated[
    Path, typer.Option("--data-dir", envvar="DCHAT_DATA_DIR", help="The relay's data directory.")
]


@relay_app.command("claim")
def claim(
    data_dir: RelayDir,
    node: NodeDir,
    passphrase_file: PassFile = None,
    fee: Annotated[int, typer.Option(min=0, help="The chat chain fee to pay.")] = 1,
    wallet: Annotated[
        Path | None,
        typer.Option(
            "--wallet",
            help="Sign as the operator that listed the relay with `relay register` "
            "(default: the relay's node key).",
        ),
    ] = None,
) -> None:
    """Seal the relay's new delivery receipts and claim the batch on the chat chain."""
    secret = _passphrase(passphrase_file)
    if wallet is not None:
        key = guard(lambda: load_wallet(wallet, secret))
    else:
        key = _relay_key(data_dir, secret)
    sealed = _Api(data_dir).call("POST", "/v1/relay/receipts/batch")
    if sealed["root"] is None:
        _out.print_json(json.dumps({"claimed": False, **sealed}))
        return
    chain = _Api(node)
    owner = key.public_key.to_bytes()
    tx = Transaction.create(
        key,
        chain_id=str(chain.call("GET", "/v1/chain/status")["chain_id"]),
        nonce=int(chain.call("GET", f"/v1/chain/accounts/{owner.hex()}")["next_nonce"]),
        fee=fee,
        kind="receipt_batch",
        body={"root": bytes.fromhex(sealed["root"]), "count": sealed["count"]},
    )
    (result,) = chain.call("POST", "/v1/chain/txs", {"txs": [tx.raw.hex()]})["results"]
    committed = result["accepted"] and _committed_ok(chain, result["hash"])
    if committed:  # the relay keeps older batches until this claim's audits are over
        _Api(data_dir).call("POST", "/v1/relay/receipts/claimed", {"root": sealed["root"]})
    claimed = {"claimed": bool(result["accepted"]), "committed": committed}
    _out.print_json(json.dumps({**claimed, **sealed, "tx": result}))
    if not result["accepted"]:
        raise typer.Exit(1)


def _committed_ok(chain: _Api, digest: str, wait: float = 60.0) -> bool:
    """Whether transaction ``digest`` is committed with code 0 within ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        status = chain.call("GET", f"/v1/chain/txs/{digest}")
        if status["status"] == "committed":
            return bool(status["code"] == 0)
        time.sleep(0.2)
    return False
