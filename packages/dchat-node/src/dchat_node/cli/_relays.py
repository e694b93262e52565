"""A user node's home relays from the chain's relay directory (``[node.relay_discovery]``).

With ``relay_discovery = true`` (or a ``[node.relay_discovery]`` table, see
:class:`dchat_chain.lowlevel.RelayDiscovery`) ``dchat-node run`` resolves the
user's home relays before the node starts: it reads the whole directory
through two light clients (the chat chain's listings and index, the currency
chain's bonds; every value proven against a certified header, the headers
verified from the genesis files given as trust anchors), lets
:func:`dchat_chain.lowlevel.choose_home_relays` pick diverse, staked relays,
pinned guard-style against the choice stored in ``DATA_DIR/home-relays.json``,
stores the result there and runs the node with it as its ``relays`` list.

If the directory cannot be read, or the view is refused (all relays under one
operator, too few diverse ones), a node that has pinned relays keeps them and
says so on stderr; one that has none stops with the reason. The chain API
read is a validator's: its data directory (``api.json``) or a URL with the
token in ``DCHAT_CHAIN_API_TOKEN``; it is never trusted. Without ``chat_api``
the chat chain is the one the node's handles read (``chat_node``, and
``chat_genesis`` unless the table names its own).

The same view's eligible relays, with their operator groups and tags, are
stored in ``DATA_DIR/onion-directory.json``: with onion mode on and no
``onion_relays`` set by hand, every onion route is drawn from it, each hop of
another operator and network (:class:`dchat_chain.lowlevel.OnionDirectory`).

``dchat-node relays`` shows the pinned choice; ``--refresh`` resolves it now.
Discovery runs here, in the command line, so the node shell stays a thin
composition of engines; the verified state of each light client is kept in
``DATA_DIR/light/``.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path  # noqa: TC003 - typer reads the annotations at run time
from typing import TYPE_CHECKING, Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from dchat_chain.lowlevel import (
    ONION_DIRECTORY_FILE,
    DirectoryRead,
    HomeRelays,
    OnionDirectory,
    RelayDiscovery,
    WalletLightReader,
    choose_home_relays,
    genesis_anchor,
    light_state_path,
)
from dchat_core import DchatError
from dchat_storage.lowlevel import write_private

from .._errors import DchatNodeError
from ..api._relay import HOME_RELAYS_FILE
from ..config import NodeConfig, load_config
from ._common import err_console
from ._common import fail as _fail
from ._common import guard as _guard

if TYPE_CHECKING:
    from dchat_chain.lowlevel import DirectoryView

__all__ = (
    "HOME_RELAYS_FILE",
    "discover_home_relays",
    "register_relays_command",
    "with_home_relays",
)

_out = Console()


class DiscoveryError(DchatNodeError):
    """The directory could not be read (unreachable node, missing file); the message says why."""


def _api(text: str, data_dir: Path) -> tuple[str, dict[str, str]]:
    """Base URL and headers of a chain API given as a URL or a validator's data directory."""
    if text.startswith(("http://", "https://")):
        token = os.environ.get("DCHAT_CHAIN_API_TOKEN")
        return text, {"Authorization": f"Bearer {token}"} if token else {}
    directory = data_dir / text
    try:
        info = json.loads((directory / "api.json").read_text())
        return str(info["url"]), {"Authorization": f"Bearer {info['token']}"}
    except (OSError, ValueError, KeyError):
        raise DiscoveryError(f"no running chain node found in {directory}") from None


def _reader(http: httpx.Client, api: str, genesis: str, data_dir: Path) -> WalletLightReader:
    if not api:
        raise DiscoveryError("relay_discovery needs chat_api and currency_api")
    url, headers = _api(api, data_dir)
    try:
        anchor = (data_dir / genesis).read_bytes()
    except OSError as exc:
        raise DiscoveryError(f"cannot read the genesis {genesis}: {exc.strerror}") from None

    def fetch(path: str) -> Any:
        response = http.get(url + path, headers=headers)
        if response.status_code >= 400:
            raise DiscoveryError(f"the chain node answered HTTP {response.status_code} to {path}")
        return response.json()

    light = data_dir / "light"
    light.mkdir(mode=0o700, exist_ok=True)
    path = light_state_path(light, genesis_anchor(anchor)[0])
    return WalletLightReader.open(fetch, path, anchor)


def read_directory(config: NodeConfig) -> DirectoryView:
    """The whole relay directory with bonds, every value verified by a light client.

    Raises:
        DiscoveryError: A node or file could not be reached or read.
        DchatError: An answer failed verification (a lying or broken node).
    """
    settings, data_dir = config.relay_discovery, config.data_dir
    # The chat chain the handles feature reads (chat_node, chat_genesis) serves here too.
    chat_api = settings.chat_api or str(config.chat_node or "")
    chat_genesis = settings.chat_genesis
    if config.chat_genesis is not None and chat_genesis == RelayDiscovery().chat_genesis:
        chat_genesis = str(config.chat_genesis)
    try:
        with httpx.Client(timeout=10.0) as http:
            readers = {
                "chat": _reader(http, chat_api, chat_genesis, data_dir),
                "currency": _reader(
                    http, settings.currency_api, settings.currency_genesis, data_dir
                ),
            }
            directory = DirectoryRead()
            while (step := directory.next_read()) is not None:
                chain, path, key = step
                directory.receive(readers[chain].read(path, key)[1])
    except DchatError:
        raise
    except (httpx.HTTPError, ValueError) as exc:
        raise DiscoveryError(f"the chain node did not answer: {type(exc).__name__}") from None
    return directory.view()


def load_pinned(data_dir: Path) -> HomeRelays:
    """The stored choice (an empty one when there is none)."""
    path = data_dir / HOME_RELAYS_FILE
    return HomeRelays.from_json(path.read_text()) if path.exists() else HomeRelays()


def discover_home_relays(config: NodeConfig, now: float | None = None) -> HomeRelays:
    """Read the directory, choose against the pinned relays, store and return the choice.

    Raises:
        DiscoveryError: The directory could not be read.
        DchatError: A refused answer or view (e.g. ``SingleOperatorViewError``).
    """
    pinned = load_pinned(config.data_dir)
    view = read_directory(config)
    when = time.time() if now is None else now
    policy = config.relay_discovery.policy
    # Onion hops come from the same verified view (the node reads them at start).
    onions = OnionDirectory.from_view(view, policy.min_bond).to_json().encode()
    write_private(config.data_dir / ONION_DIRECTORY_FILE, onions)
    home = choose_home_relays(view, pinned, policy, when, random.SystemRandom())
    if home != pinned:
        write_private(config.data_dir / HOME_RELAYS_FILE, home.to_json().encode())
    return home


def with_home_relays(config: NodeConfig, home: HomeRelays) -> NodeConfig:
    """``config`` running on ``home``: its ``relays`` list (in place of any one ``relay``)."""
    update = {"relays": list(home.addresses), "relay": None, "relay_node": None}
    return NodeConfig.model_validate({**config.model_dump(), **update})


def resolve_for_run(config: NodeConfig) -> NodeConfig:
    """The config ``dchat-node run`` starts with: discovered relays, or the pinned ones."""
    if config.role != "user" or not config.relay_discovery.enabled:
        return config
    try:
        home = discover_home_relays(config)
        note = "home relays"
    except DchatError as exc:
        home = _guard(lambda: load_pinned(config.data_dir))
        if not home.relays:
            raise _fail(f"relay discovery: {type(exc).__name__}: {exc}") from None
        note = f"relay discovery failed ({type(exc).__name__}: {exc}); keeping pinned relays"
    err_console.print(f"{note}: {', '.join(home.addresses)}", highlight=False, soft_wrap=True)
    return with_home_relays(config, home)


def _show(home: HomeRelays) -> None:
    table = Table("relay", "operator", "pinned since")
    for relay in home.relays:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(relay.since))
        table.add_row(relay.address, relay.identity.hex()[:16], since)
    _out.print(table)


def register_relays_command(app: typer.Typer, default_dir: Path) -> None:
    """Add ``dchat-node relays`` to ``app``."""

    @app.command("relays")
    def relays(
        data_dir: Annotated[
            Path, typer.Option("--data-dir", envvar="DCHAT_DATA_DIR")
        ] = default_dir,
        refresh: Annotated[
            bool, typer.Option("--refresh", help="Read the directory and choose now.")
        ] = False,
        as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
        config: Annotated[Path | None, typer.Option(help="TOML file")] = None,
    ) -> None:
        """Show the home relays this user node pinned from the chain's directory."""
        if refresh:
            cfg = _guard(lambda: load_config(data_dir, config_file=config))
            try:
                home = discover_home_relays(cfg)
            except DchatError as exc:
                raise _fail(f"{type(exc).__name__}: {exc}") from None
        else:
            home = _guard(lambda: load_pinned(data_dir))
        if as_json:
            _out.print_json(home.to_json())
        elif not home.relays:
            _out.print("no home relays chosen yet (set relay_discovery, then --refresh)")
        else:
            _show(home)
