"""Configuration: file, then environment, then flags; invalid values are named."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from dchat_node import ConfigError, load_config
from dchat_node.cli._common import check_database_url_option
from dchat_node.cli._process import free_ports
from dchat_node.config import parse_hostport


def test_precedence_file_env_flags(tmp_path: Path) -> None:
    (tmp_path / "dchat.toml").write_text(
        '[node]\nrole = "relay"\nlisten = "127.0.0.1:7000"\npoll_interval = 5\n'
    )
    from_file = load_config(tmp_path, environ={})
    assert (from_file.role, from_file.listen, from_file.poll_interval) == (
        "relay",
        "127.0.0.1:7000",
        5,
    )
    from_env = load_config(tmp_path, environ={"DCHAT_LISTEN": "127.0.0.1:7001"})
    assert from_env.listen == "127.0.0.1:7001"
    assert from_env.role == "relay"
    from_flag = load_config(
        tmp_path, environ={"DCHAT_LISTEN": "127.0.0.1:7001"}, overrides={"listen": "127.0.0.1:7002"}
    )
    assert from_flag.listen == "127.0.0.1:7002"


@pytest.mark.parametrize(
    ("toml", "field"),
    [
        ('[node]\nrole = "miner"\n', "role"),
        ('[node]\nlisten = "nowhere"\n', "listen"),
        ('[node]\nrelay = "127.0.0.1:99999"\n', "relay"),
        ("[node]\npoll_interval = -1\n", "poll_interval"),
        ('[node]\nsurprise = "x"\n', "surprise"),
    ],
)
def test_invalid_values_name_the_field(tmp_path: Path, toml: str, field: str) -> None:
    (tmp_path / "dchat.toml").write_text(toml)
    with pytest.raises(ConfigError, match=field):
        load_config(tmp_path, environ={})


def test_unreadable_toml_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "dchat.toml").write_bytes(b"[node\n\xff")
    with pytest.raises(ConfigError):
        load_config(tmp_path, environ={})


def test_bad_environment_value_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="poll_interval"):
        load_config(tmp_path, environ={"DCHAT_POLL_INTERVAL": "soon"})


@pytest.mark.parametrize("text", ["", "host", ":80", "host:", "host:http", "host:70000"])
def test_parse_hostport_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_hostport(text)


def test_parse_hostport_accepts_ipv6_brackets() -> None:
    assert parse_hostport("[::1]:8000") == ("::1", 8000)


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = free_ports(64)
    assert len(set(ports)) == 64  # held together while picked: never one port twice
    for port in ports[:4]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


_PG = "postgresql://dchat:hunter2@db.example.org:5432/relay"


def test_database_url_from_file_env_or_flag_and_never_shown(tmp_path: Path) -> None:
    (tmp_path / "dchat.toml").write_text(f'[node]\nrole = "relay"\ndatabase_url = "{_PG}"\n')
    config = load_config(tmp_path, environ={})
    assert config.database_url is not None
    assert config.database_url.get_secret_value() == _PG
    assert "hunter2" not in repr(config)
    assert "hunter2" not in str(config.model_dump())
    other = "postgres://dchat@other/relay"
    from_env = load_config(tmp_path, environ={"DCHAT_DATABASE_URL": other})
    assert from_env.database_url is not None
    assert from_env.database_url.get_secret_value() == other
    assert load_config(tmp_path / "none", environ={}).database_url is None  # SQLite: node.db


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"database_url": "sqlite:///x.db?password=hunter2"}, "not a PostgreSQL URL"),
        ({"role": "validator", "database_url": _PG}, "database_url: .*for user and relay nodes"),
    ],
)
def test_database_url_mistakes_are_config_errors(
    tmp_path: Path, fields: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(tmp_path, environ={}, overrides=fields)
    assert "hunter2" not in str(caught.value)


def test_a_password_on_the_command_line_is_refused() -> None:
    check_database_url_option(None)
    check_database_url_option("postgresql://dchat@db.example.org/relay")
    with pytest.raises(ConfigError, match="process list") as caught:
        check_database_url_option(_PG)
    assert "hunter2" not in str(caught.value)


_NINE = ", ".join(f'"h:{port}"' for port in range(1, 10))


def test_home_relays_from_the_list_or_the_one_relay_shorthand(tmp_path: Path) -> None:
    from dchat_core import NodeId, RelayAddress

    node = str(NodeId.derive(b"relay b"))
    (tmp_path / "dchat.toml").write_text(
        f'[node]\nrelays = ["127.0.0.1:7400", "{node}@[::1]:7401"]\nmultipath_k = 1\n'
    )
    config = load_config(tmp_path, environ={})
    assert config.home_relays == (
        RelayAddress("127.0.0.1", 7400),
        RelayAddress("::1", 7401, NodeId.parse(node)),
    )
    assert config.multipath_k == 1
    one = load_config(tmp_path, overrides={"relays": (), "relay": "h:1", "relay_node": node})
    assert one.home_relays == (RelayAddress("h", 1, NodeId.parse(node)),)
    assert load_config(tmp_path, overrides={"relays": ()}).home_relays == ()


@pytest.mark.parametrize(
    ("table", "complaint"),
    [
        ('relays = ["h:1", "h:1"]\n', "relays"),
        ('relays = ["h:0"]\n', "relays"),
        ('relays = ["dcnd1zz@h:1"]\n', "relays"),
        ('relays = ["h:1"]\nrelay = "h:2"\n', "relays"),
        ("multipath_k = 0\n", "multipath_k"),
        (f"relays = [{_NINE}]\n", "relays"),
    ],
)
def test_bad_home_relays_are_named(tmp_path: Path, table: str, complaint: str) -> None:
    (tmp_path / "dchat.toml").write_text("[node]\n" + table)
    with pytest.raises(ConfigError, match=complaint):
        load_config(tmp_path, environ={})
