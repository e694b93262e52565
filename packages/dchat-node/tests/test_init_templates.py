"""``dchat-node init``: a commented config per role that loads back to what it says."""

from __future__ import annotations

import dataclasses
import re
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dchat_messaging.bots import BotLimits
from dchat_network import RelayLimits
from dchat_network.lowlevel import ClaimSettings, TokenSettings
from dchat_node import ConfigError, load_config
from dchat_node.cli import node_app
from dchat_node.cli._init import ROLE_ADDRESSES, render_config, write_config
from dchat_node.config import NodeConfig

runner = CliRunner()
ROLES = ("user", "relay", "validator")
_DEFAULT_LINE = re.compile(r"^# (\w+) = (.+)$", re.MULTILINE)
_EXAMPLE_LINE = re.compile(r"^# e\.g\. (\w+) = ", re.MULTILINE)
_NOT_USED = re.compile(r"^# Not used by an? \w+ node: (.*?)\.$", re.MULTILINE | re.DOTALL)


def _init(data_dir: Path, *args: str) -> str:
    result = runner.invoke(node_app, ["init", "--data-dir", str(data_dir), *args])
    assert result.exit_code == 0, result.output
    return (data_dir / "dchat.toml").read_text()


def _expected(data_dir: Path, role: str, **given: str) -> NodeConfig:
    listen, api_listen = ROLE_ADDRESSES[role]
    fields = {"role": role, "data_dir": data_dir, "listen": listen, "api_listen": api_listen}
    return NodeConfig.model_validate(fields | given)


@pytest.mark.parametrize("role", ROLES)
def test_the_written_file_loads_back_to_the_same_config(tmp_path: Path, role: str) -> None:
    _init(tmp_path, "--role", role)
    assert load_config(tmp_path, environ={}) == _expected(tmp_path, role)
    assert stat.S_IMODE((tmp_path / "dchat.toml").stat().st_mode) == 0o600


def test_given_options_become_active_lines(tmp_path: Path) -> None:
    text = _init(tmp_path, "--relay", "relay.example.org:7400", "--listen", "127.0.0.1:9000")
    assert 'relay = "relay.example.org:7400"' in text.splitlines()
    assert load_config(tmp_path, environ={}) == _expected(
        tmp_path, "user", relay="relay.example.org:7400", listen="127.0.0.1:9000"
    )


def _tables(text: str) -> tuple[str, dict[str, str]]:
    """The ``[node]`` part of a config text, and each ``[node.NAME]`` table's text by name."""
    parts = re.split(r"^\[node\.(\w+)\]$", text, flags=re.MULTILINE)
    return parts[0], dict(zip(parts[1::2], parts[2::2], strict=True))


@pytest.mark.parametrize("role", ROLES)
def test_every_option_is_documented_for_every_role(role: str) -> None:
    text, tables = _tables(render_config(role))
    defaults = {name for name, _ in _DEFAULT_LINE.findall(text)} | set(tables)
    examples = set(_EXAMPLE_LINE.findall(text))
    active = set(re.findall(r"^(\w+) = ", text, re.MULTILINE))
    (not_used,) = _NOT_USED.findall(text)
    ignored = {name.strip() for name in re.sub(r"\(.*?\)|#", "", not_used).split(",")}
    assert defaults | examples | active | ignored == set(NodeConfig.model_fields) - {"data_dir"}
    assert not (defaults | examples | active) & ignored


def test_every_bot_limit_is_documented_in_its_table() -> None:
    _, tables = _tables(render_config("user"))
    documented = {name for name, _ in _DEFAULT_LINE.findall(tables["bot_limits"])}
    assert documented == {field.name for field in dataclasses.fields(BotLimits)}


def test_bot_limits_out_of_range_are_config_errors(tmp_path: Path) -> None:
    (tmp_path / "dchat.toml").write_text("[node.bot_limits]\nburst = 0\n")
    with pytest.raises(ConfigError, match="bot_limits"):
        load_config(tmp_path, environ={})


def test_every_relay_limit_is_documented_in_its_table() -> None:
    _, tables = _tables(render_config("relay"))
    documented = {name for name, _ in _DEFAULT_LINE.findall(tables["relay_limits"])}
    assert documented == {field.name for field in dataclasses.fields(RelayLimits)}


def test_every_claim_setting_is_documented_in_its_table() -> None:
    _, tables = _tables(render_config("relay"))
    documented = {name for name, _ in _DEFAULT_LINE.findall(tables["relay_claims"])}
    examples = set(_EXAMPLE_LINE.findall(tables["relay_claims"]))
    assert documented | examples == {field.name for field in dataclasses.fields(ClaimSettings)}


def test_every_token_setting_is_documented_in_its_table() -> None:
    _, tables = _tables(render_config("relay"))
    documented = {name for name, _ in _DEFAULT_LINE.findall(tables["relay_tokens"])}
    examples = set(_EXAMPLE_LINE.findall(tables["relay_tokens"]))
    assert documented | examples == {field.name for field in dataclasses.fields(TokenSettings)}


@pytest.mark.parametrize("role", ROLES)
def test_uncommenting_the_defaults_changes_nothing(tmp_path: Path, role: str) -> None:
    text = render_config(role)
    defaults = _DEFAULT_LINE.findall(text)
    assert len(defaults) >= 3
    (tmp_path / "dchat.toml").write_text(_DEFAULT_LINE.sub(r"\1 = \2", text))
    assert load_config(tmp_path, environ={}) == _expected(tmp_path, role)


def test_examples_are_valid_values(tmp_path: Path) -> None:
    text = render_config("validator")
    uncommented = re.sub(r"^# e\.g\. (\w+ = .+)$", r"\1", text, flags=re.MULTILINE)
    uncommented = uncommented.replace("# peers = []\n", "")
    (tmp_path / "dchat.toml").write_text(uncommented)
    config = load_config(tmp_path, environ={})
    assert config.currency_chain == "dchat-currency-1"
    assert len(config.peers) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--role", "miner"), "unknown role 'miner'"),
        (("--listen", 'a"b'), "listen"),
        (("--role", "relay", "--relay", "127.0.0.1:1"), "--relay names a user node's"),
    ],
)
def test_mistakes_are_one_line_and_write_nothing(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    result = runner.invoke(node_app, ["init", "--data-dir", str(tmp_path / "d"), *args])
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "d" / "dchat.toml").exists()


def test_an_existing_file_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "dchat.toml").write_text("[node]\n")
    with pytest.raises(ConfigError, match="exists already"):
        write_config(tmp_path, render_config("user"))
    assert (tmp_path / "dchat.toml").read_text() == "[node]\n"


def test_a_database_url_becomes_an_active_line(tmp_path: Path) -> None:
    url = "postgresql://dchat@db.example.org:5432/dchat_relay"
    text = _init(tmp_path, "--role", "relay", "--database-url", url)
    assert f'database_url = "{url}"' in text.splitlines()
    config = load_config(tmp_path, environ={})
    assert config.database_url is not None
    assert config.database_url.get_secret_value() == url


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--database-url", "postgresql://dchat:pw@db/x"), "holds a password"),
        (("--role", "validator", "--database-url", "postgresql://db/x"), "user and relay"),
    ],
)
def test_database_url_mistakes_at_init_are_one_line(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    result = runner.invoke(node_app, ["init", "--data-dir", str(tmp_path / "d"), *args])
    assert result.exit_code == 1
    assert message in result.output
    assert ":pw@" not in result.output
    assert not (tmp_path / "d" / "dchat.toml").exists()


def test_init_writes_every_home_relay_given(tmp_path: Path) -> None:
    from dchat_core import NodeId, RelayAddress

    pinned = f"{NodeId.derive(b'b')}@127.0.0.1:7401"
    text = _init(tmp_path, "--relay", "127.0.0.1:7400", "--relay", pinned)
    assert f'relays = ["127.0.0.1:7400", "{pinned}"]' in text.splitlines()
    config = load_config(tmp_path, environ={})
    assert config.home_relays == (RelayAddress("127.0.0.1", 7400), RelayAddress.parse(pinned))


def test_init_writes_one_pinned_relay_as_a_list(tmp_path: Path) -> None:
    pinned = "dcnd1" + "a" * 52 + "@127.0.0.1:7401"
    assert render_config("user", relays=(pinned,)).count(f'relays = ["{pinned}"]') == 1
