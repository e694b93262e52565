"""Relay discovery at start, without chains: settings, the fallback to pinned relays, the API.

The end-to-end path (relays register, a user node discovers them through real
validators) is in test_relay_directory.py; these tests need no process.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from dchat_chain.lowlevel import HomeRelays, PinnedRelay, PinnedRelaysError
from dchat_core import NodeId
from dchat_crypto import KdfParams, SigningKey
from dchat_node import ConfigError
from dchat_node.cli import node_app
from dchat_node.cli._relays import HOME_RELAYS_FILE, resolve_for_run, with_home_relays
from dchat_node.config import NodeConfig, load_config
from dchat_node.validator._keys import write_wallet

PINNED = HomeRelays(
    (
        PinnedRelay(b"\x01" * 32, b"\x11" * 32, "relay-a.example:7400", 5.0),
        PinnedRelay(b"\x02" * 32, b"\x12" * 32, "relay-b.example:7400", 6.0),
    ),
    6.0,
)


def _config(data_dir: Path, **discovery: object) -> NodeConfig:
    table = {"enabled": True, "chat_api": "missing-chat", "currency_api": "missing-cur"}
    return load_config(data_dir, overrides={"relay_discovery": table | discovery}, environ={})


def test_true_is_short_for_enabled_defaults(tmp_path: Path) -> None:
    config = load_config(tmp_path, overrides={"relay_discovery": True}, environ={})
    assert config.relay_discovery.enabled
    assert config.relay_discovery.policy.min_home_relays == 2
    with pytest.raises(ConfigError, match="min_home_relays"):
        load_config(tmp_path, overrides={"relay_discovery": {"min_home_relays": 0}}, environ={})


def test_an_unreachable_directory_keeps_the_pinned_relays(tmp_path: Path) -> None:
    (tmp_path / HOME_RELAYS_FILE).write_text(PINNED.to_json())
    config = resolve_for_run(_config(tmp_path))
    assert [str(a) for a in config.home_relays] == list(PINNED.addresses)


def test_an_unreachable_directory_without_pinned_relays_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(typer.Exit):
        resolve_for_run(_config(tmp_path))


def test_a_corrupt_pinned_file_stops_the_start(tmp_path: Path) -> None:
    (tmp_path / HOME_RELAYS_FILE).write_text('{"v": 1, "relays": "x"}')
    with pytest.raises(typer.Exit):
        resolve_for_run(_config(tmp_path))
    with pytest.raises(PinnedRelaysError):
        HomeRelays.from_json((tmp_path / HOME_RELAYS_FILE).read_text())


def test_discovery_off_leaves_the_config_alone(tmp_path: Path) -> None:
    config = load_config(tmp_path, overrides={"relay": "r.example:1"}, environ={})
    assert resolve_for_run(config) is config


def test_the_choice_becomes_the_relays_of_the_node(tmp_path: Path) -> None:
    config = with_home_relays(_config(tmp_path), PINNED)
    first, second = config.home_relays  # both, each pinned to its listed node key
    assert (first.hostport, first.node) == ("relay-a.example:7400", NodeId.derive(b"\x11" * 32))
    assert (second.hostport, second.node) == ("relay-b.example:7400", NodeId.derive(b"\x12" * 32))
    assert config.relay is None
    assert config.relay_discovery.enabled


def _wallet(tmp_path: Path) -> tuple[Path, Path]:
    passfile, wallet = tmp_path / "pass", tmp_path / "op.wallet"
    passfile.write_text("operator passphrase")
    write_wallet(wallet, SigningKey.generate(), b"operator passphrase", kdf=KdfParams.TESTING)
    return wallet, passfile


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(node_app, list(args))
    return result.exit_code, result.output


def test_relay_commands_fail_with_one_clear_line(tmp_path: Path) -> None:
    wallet, passfile = _wallet(tmp_path)
    common = ["--wallet", str(wallet), "--passphrase-file", str(passfile)]
    code, out = _run(
        "relay", "register", "--chat-node", str(tmp_path), "--relay-dir", str(tmp_path),
        "--region", "eu", *common,
    )  # fmt: skip
    assert (code, "holds no relay node key" in out) == (1, True)
    code, out = _run("relay", "bond", "--currency-node", str(tmp_path), *common, "5")
    assert (code, "no running node found" in out) == (1, True)
    code, out = _run("relay", "status", "--chat-node", str(tmp_path))
    assert (code, "give --operator or --wallet" in out) == (1, True)
    code, out = _run("relay", "status", "--operator", "zz", "--chat-node", str(tmp_path))
    assert (code, "64 hex digits" in out) == (1, True)
    wrong = ["--wallet", str(wallet), "--passphrase-file", str(tmp_path / "op.wallet")]
    code, out = _run("relay", "bond", "--currency-node", str(tmp_path), *wrong, "5")
    assert code == 1
    assert "error" in out


def test_relays_shows_the_pinned_choice(tmp_path: Path) -> None:
    code, out = _run("relays", "--data-dir", str(tmp_path))
    assert (code, "no home relays chosen yet" in out) == (0, True)
    (tmp_path / HOME_RELAYS_FILE).write_text(PINNED.to_json())
    code, out = _run("relays", "--data-dir", str(tmp_path), "--json")
    assert code == 0
    assert HomeRelays.from_json(out) == PINNED
    code, out = _run("relays", "--data-dir", str(tmp_path), "--refresh")
    assert (code, "DiscoveryError" in out) == (1, True)  # discovery is not configured


def test_onion_routes_come_from_the_stored_directory_unless_onion_relays_are_set(
    tmp_path: Path,
) -> None:
    from dchat_chain.lowlevel import (
        ONION_DIRECTORY_FILE,
        DirectoryView,
        OnionDirectory,
        RelayListing,
    )
    from dchat_core import RelayAddress, SystemClock
    from dchat_node.user._service import _directory_routes

    regions = ["eu", "us", "asia"]
    entries = tuple(
        RelayListing(bytes([i]) * 32, f"10.0.0.{i}:7400", r, bytes([i]) * 32, bytes([i]) * 32)
        for i, r in enumerate(regions, 1)
    )
    view = DirectoryView(entries, {e.stake_ref: 1 for e in entries})
    (tmp_path / ONION_DIRECTORY_FILE).write_text(OnionDirectory.from_view(view, 1).to_json())
    routes = _directory_routes(_config(tmp_path), SystemClock())
    assert routes is not None
    last = RelayAddress.parse(entries[0].address)
    route = routes.route(last, random.Random(2))
    assert route[-1] == last
    assert {str(hop) for hop in route[:-1]} == {entries[1].address, entries[2].address}
    assert str(route[0]) in {guard.address for guard in routes.guards}  # starts at a guard
    manual = load_config(
        tmp_path,
        overrides={"relay_discovery": True, "onion_relays": [entries[1].address]},
        environ={},
    )
    assert _directory_routes(manual, SystemClock()) is None  # the manual override wins
    discovery_off = load_config(tmp_path, environ={})
    assert _directory_routes(discovery_off, SystemClock()) is None
