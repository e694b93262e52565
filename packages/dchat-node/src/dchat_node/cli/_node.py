"""``dchat-node``: run and set up a node (the server side; ``dchat`` never imports this).

Only ``run`` needs the node itself (storage, the API server, the roles), and it
imports them when it runs; ``init`` and the groups (registered lazily, see
``_lazy``) load their modules when used, so ``dchat-node --help`` and the light
commands skip the seconds of CPU a node's imports cost.
"""

from __future__ import annotations

import functools
import gc
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ClassVar

import typer

from ._common import DEFAULT_DIR as _DEFAULT_DIR
from ._common import check_database_url_option, read_passphrase
from ._common import guard as _guard
from ._lazy import LazyGroups, group_of, new_part

if TYPE_CHECKING:
    from ._lazy import Loader

__all__ = ("node_app",)


@functools.cache
def _relays() -> typer.Typer:
    from ._relays import register_relays_command

    part = new_part()
    register_relays_command(part, _DEFAULT_DIR)
    return part


class _NodeGroup(LazyGroups):
    # name -> (one-line help, loader of its part), listed by ``--help`` without loading
    lazy: ClassVar[dict[str, tuple[str, Loader]]] = {
        "relays": (
            "Show the home relays this user node pinned from the chain's directory.",
            _relays,
        ),
        "backup": (
            "Encrypted, deduplicated backups of a node's data directory.",
            group_of("._backup", "backup_app", "backup"),
        ),
        "chain": ("Chain set-up and queries.", group_of("._chain", "chain_app", "chain")),
        "relay": (
            "Operate a relay: list it, bond stake, watch it.",
            group_of("._relay", "relay_app", "relay"),
        ),
    }


node_app = typer.Typer(
    help="Run and manage a dchat node.",
    no_args_is_help=True,
    cls=_NodeGroup,
    rich_markup_mode=None,  # plain help, as ``dchat``'s: rich costs ~0.1 s of start-up
    context_settings={"max_content_width": 120},
)
DataDir = Annotated[
    Path, typer.Option("--data-dir", envvar="DCHAT_DATA_DIR", help="The node's data directory.")
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        help="user/relay: PostgreSQL URL of the node's database (default DATA_DIR/node.db); "
        "no password here (use dchat.toml, DCHAT_DATABASE_URL or ~/.pgpass)"
    ),
]


@node_app.command("run")
def run(
    data_dir: DataDir = _DEFAULT_DIR,
    role: Annotated[
        str | None, typer.Option(help="user, relay or validator (default: dchat.toml's)")
    ] = None,
    listen: Annotated[
        str | None,
        typer.Option(help="HOST:PORT: link listener (relay, validator) or local API (user)"),
    ] = None,
    api_listen: Annotated[
        str | None, typer.Option(help="HOST:PORT of a relay's or validator's API")
    ] = None,
    relay: Annotated[str | None, typer.Option(help="user: HOST:PORT of the home relay")] = None,
    relay_node: Annotated[str | None, typer.Option(help="user: pin the relay's node id")] = None,
    poll_interval: Annotated[float | None, typer.Option(help="seconds between fetches")] = None,
    config: Annotated[
        Path | None, typer.Option(help="TOML file (default DATA_DIR/dchat.toml)")
    ] = None,
    passphrase_file: Annotated[
        Path | None, typer.Option(help="file holding the passphrase")
    ] = None,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning or error")] = None,
    expose_api: Annotated[
        bool | None,
        typer.Option(
            "--expose-api", help="allow the API off loopback (needs api_tls_cert/api_tls_key)"
        ),
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Run a node until SIGINT or SIGTERM."""
    import trio

    from dchat_network import tracing

    from .._logging import configure_logging
    from .._runtime import run_node
    from ..config import load_config
    from ._relays import resolve_for_run

    _guard(lambda: check_database_url_option(database_url))
    overrides = {
        "role": role,
        "listen": listen,
        "api_listen": api_listen,
        "relay": relay,
        "relay_node": relay_node,
        "poll_interval": poll_interval,
        "log_level": log_level,
        "expose_api": expose_api,
        "database_url": database_url,
    }
    cfg = _guard(lambda: load_config(data_dir, config_file=config, overrides=overrides))
    secret = read_passphrase(passphrase_file, "DCHAT_PASSPHRASE", "unlock the node's keys")
    cfg = resolve_for_run(cfg)
    configure_logging(cfg.log_level)
    file = cfg.tracing_file
    traces = tracing.configure(
        f"dchat-{cfg.role}",
        endpoint=cfg.tracing_endpoint,
        file=None if file is None else cfg.data_dir / file,  # an absolute file stays itself
        fallback=cfg.data_dir / "traces.jsonl",
    )
    tracing.install(traces)

    # Told when the node is up (its errors reach _guard unwrapped, as before).
    up = functools.partial(run_node, cfg, secret, task_status=_SettleWhenUp())
    try:
        _guard(lambda: trio.run(up))
    finally:
        traces.shutdown()  # flushes the spans still batched


class _SettleWhenUp:
    """The ``task_status`` of the node run by ``dchat-node run``: settles the heap once up."""

    def started(self, value: object = None) -> None:
        _settle_heap()


def _settle_heap() -> None:
    """Freeze what start-up built (modules, config, roles) out of the garbage collector's scans.

    A full collection otherwise walks every object the process holds, some
    180,000 for a relay once up: measured under a connection flood on a busy
    2-core machine, such a pass stopped the relay's event loop and its
    database worker together for 350 to 860 ms, the worst of its honest
    latency. Frozen, a full pass walks only what came after start-up (some
    30,000 objects under that flood). Only the process that runs the node
    freezes: a node embedded in another program leaves that program's heap
    alone.
    """
    gc.collect()
    gc.freeze()


@node_app.command("init")
def init_node(
    data_dir: DataDir = _DEFAULT_DIR,
    role: Annotated[str, typer.Option(help="user, relay or validator")] = "user",
    listen: Annotated[
        str | None,
        typer.Option(help="HOST:PORT (user 127.0.0.1:8470, relay :7400, validator :7500)"),
    ] = None,
    api_listen: Annotated[
        str | None, typer.Option(help="relay/validator: HOST:PORT of the API (loopback)")
    ] = None,
    relay: Annotated[
        list[str] | None,
        typer.Option(
            help="user: a home relay, [NODEID@]HOST:PORT; repeat it for several (multi-path)"
        ),
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Write a commented ``dchat.toml`` for ROLE into the data directory (every option)."""
    from rich.console import Console

    from ._init import render_config, write_config

    _guard(lambda: check_database_url_option(database_url))
    relays = tuple(relay or ())
    text = _guard(
        lambda: render_config(
            role, listen=listen, api_listen=api_listen, relays=relays, database_url=database_url
        )
    )
    _guard(lambda: write_config(data_dir, text))
    Console().print(f"wrote {data_dir / 'dchat.toml'}", highlight=False)
