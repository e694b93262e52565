"""Relay commands: ``dchat-node relay claim``.

A relay keeps the delivery receipts its users' nodes give it (in memory, for
validators' audits). ``claim`` asks the running relay (``--data-dir``, through
its ``api.json``) to seal the receipts taken since the last claim into a Merkle
batch, and claims that batch on the chat chain as ``receipt_batch {root,
count}``, signed with the relay's node key (unlocked with the node passphrase)
and sent to the chat validator of ``--node``. The node key must be the key of
the chat-chain identity that listed the relay (``register_relay``): the chain
accepts batches only from a listed relay's identity. Run it now and then (a
timer); every claimed batch stays auditable while the relay runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from dchat_chain import Transaction
from dchat_core import DchatError

from ..relay._role import load_node_key
from ._chain import NodeDir, PassFile, _Api, _passphrase
from ._common import fail

__all__ = ("relay_app",)

_out = Console()

relay_app = typer.Typer(help="A relay's receipts and claims.", no_args_is_help=True)
RelayDir = Annotated[
    Path, typer.Option("--data-dir", envvar="DCHAT_DATA_DIR", help="The relay's data directory.")
]


@relay_app.command("claim")
def claim(
    data_dir: RelayDir,
    node: NodeDir,
    passphrase_file: PassFile = None,
    fee: Annotated[int, typer.Option(min=0, help="The chat chain fee to pay.")] = 1,
) -> None:
    """Seal the relay's new delivery receipts and claim the batch on the chat chain."""
    if not (data_dir / "node.key").exists():  # (loading would make one)
        raise fail(f"no relay node key in {data_dir}")
    try:
        key = load_node_key(data_dir / "node.key", _passphrase(passphrase_file))
    except DchatError as exc:
        raise fail(str(exc)) from None
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
    _out.print_json(json.dumps({"claimed": bool(result["accepted"]), **sealed, "tx": result}))
    if not result["accepted"]:
        raise typer.Exit(1)
