"""The ``dchat`` client stays light and its errors stay one line (issue 19, item 2)."""

from __future__ import annotations

import errno
import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from hypothesis import example, given
from hypothesis import strategies as st
from typer.testing import CliRunner

from dchat_node import ConfigError
from dchat_node.cli import _client, _common, _node, app, node_app

runner = CliRunner()

# What a client command must never load: the node's server, storage, chain, event loop.
# (pydantic is allowed: typer itself coerces a command's parameters with it.)
HEAVY_TOPS = {
    "alembic",
    "dchat_chain",
    "dchat_network",
    "dchat_storage",
    "fastapi",
    "hypercorn",
    "sqlalchemy",
    "trio",
}
HEAVY_NODE = ("dchat_node._runtime", "dchat_node.api", "dchat_node.config", "dchat_node.user")
# What ``dchat send`` does without (issue 19: under 0.3 s of CPU): rich, pydantic (typer
# converts values with it, see cli/_coerce), the SDK's async client and WebSocket.
NOT_FOR_SEND = {"anyio", "h2", "httpcore", "httpx", "pydantic", "rich", "wsproto"}
NOT_FOR_SEND_SDK = ("dchat_sdk._async", "dchat_sdk._client", "dchat_sdk._socket")
# ``dchat --help`` loads no more than typer and the command list.
NOT_FOR_HELP = NOT_FOR_SEND | {"dchat_core", "dchat_sdk"}
_PROBE = """
import json, sys
sys.argv = ["dchat", *json.loads(sys.argv[1])]
from dchat_node.cli import main
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(m for m, v in sys.modules.items() if v is not None)))
"""


def _loaded_by(*args: str, probe: str = _PROBE) -> set[str]:
    """The modules a fresh interpreter holds after running ``dchat ARGS``."""
    done = subprocess.run(
        [sys.executable, "-c", probe, json.dumps(list(args))],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY_TOPS or m.startswith(HEAVY_NODE))


def _tops(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def test_help_loads_only_typer_and_the_command_list() -> None:
    loaded = _loaded_by("--help")
    assert "dchat_node.cli._client" in loaded  # the probe ran (it would pass on nothing)
    assert _heavy(loaded) == []
    assert sorted(_tops(loaded) & NOT_FOR_HELP) == []
    assert not any(m.startswith("dchat_node.cli._") for m in loaded - _LIGHT_CLI)


_LIGHT_CLI = {f"dchat_node.cli.{m}" for m in ("_client", "_coerce", "_common", "_lazy", "_names")}


def test_send_loads_the_sync_client_only() -> None:
    loaded = _loaded_by("--data-dir", "/nonexistent/dchat", "send", "bob", "hi")
    assert "dchat_sdk._remote" in loaded  # it got as far as the node's address
    assert _heavy(loaded) == []
    assert sorted(_tops(loaded) & NOT_FOR_SEND) == []
    assert [m for m in loaded if m.startswith(NOT_FOR_SEND_SDK)] == []


def test_the_heavy_check_sees_the_node() -> None:
    """The same probe on a wallet command does load the chain (the check can fail)."""
    assert "dchat_chain" in {m.split(".")[0] for m in _loaded_by("wallet", "--help")}


def test_wallet_is_listed_and_runs_when_loaded() -> None:
    top = runner.invoke(app, ["--help"])
    assert top.exit_code == 0
    assert "wallet" in top.output
    wallet = runner.invoke(app, ["wallet", "--help"])
    assert wallet.exit_code == 0, wallet.output
    assert "transfer" in wallet.output
    assert "install-completion" not in wallet.output  # only the root offers completion
    channel = runner.invoke(app, ["wallet", "channel", "--help"])
    assert channel.exit_code == 0, channel.output


def test_shell_completion_is_offered() -> None:
    assert "--install-completion" in runner.invoke(app, ["--help"]).output
    script = runner.invoke(app, ["--show-completion", "bash"], prog_name="dchat")
    assert script.exit_code == 0, script.output
    assert "_DCHAT_COMPLETE=complete_bash" in script.output


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("dchat se", {"search", "send"}),
        ("dchat contact ", {"add", "list", "remove", "rename", "block"}),  # a lazy group
        ("dchat send --", {"--as", "--file", "--image", "--help"}),
    ],
)
def test_completion_reaches_lazy_commands(words: str, expected: set[str]) -> None:
    env = {"_DCHAT_COMPLETE": "complete_bash", "COMP_WORDS": words}
    env["COMP_CWORD"] = str(len(words.split(" ")) - 1)
    result = runner.invoke(app, [], prog_name="dchat", env=env)
    assert result.exit_code == 0, result.output
    assert expected <= set(result.output.split()), result.output


def test_node_help_loads_no_node() -> None:
    """``dchat-node --help`` lists every command without the server, storage or chain."""
    probe = _PROBE.replace('"dchat"', '"dchat-node"').replace("import main", "import node_main")
    loaded = _loaded_by("--help", probe=probe.replace("    main()", "    node_main()"))
    assert "dchat_node.cli._node" in loaded  # the probe ran (it would pass on nothing)
    assert _heavy(loaded) == []
    assert "rich" not in _tops(loaded)


def test_every_lazy_node_command_is_listed_with_its_own_help() -> None:
    """``_node``'s table says what each group and command says of itself."""
    root = typer.main.get_command(node_app)
    listed = set(runner.invoke(node_app, ["--help"]).output.split())
    ctx = root.make_context("dchat-node", ["run"])
    for name in _node._NodeGroup.lazy:
        placeholder = root.get_command(ctx, name)
        assert placeholder is not None
        real = placeholder.real(ctx)  # type: ignore[attr-defined]
        assert real.name == name
        assert name in listed
        assert placeholder.get_short_help_str(200) == real.get_short_help_str(200), name


def test_every_lazy_command_loads_and_is_listed_with_its_own_help() -> None:
    """The one-line help in ``_client``'s table is what the command itself says."""
    root = typer.main.get_command(app)
    ctx = root.make_context("dchat", ["status"])
    for name in _client._ClientGroup.lazy:
        placeholder = root.get_command(ctx, name)
        assert placeholder is not None
        real = placeholder.real(ctx)  # type: ignore[attr-defined]
        assert real.name == name
        assert placeholder.get_short_help_str(200) == real.get_short_help_str(200), name


def _typer_converts(param: Any, value: str) -> Any:
    from typer._coercion import build_runtime_param

    return build_runtime_param(param.type_descriptor)._coerce_value(value, param, None)


def _params(command: str) -> dict[str, Any]:
    root = typer.main.get_command(app)
    ctx = root.make_context("dchat", [command])
    real = root.get_command(ctx, command).real(ctx)  # type: ignore[union-attr]
    return {p.name: p for p in real.params}


def _converted(convert: Any, param: Any, text: str) -> Any:
    try:
        return convert(text, param, None)
    except typer.BadParameter:
        return typer.BadParameter


_NUMBERS = st.text(alphabet="0123456789+-_. eE\u0663\u00b2naif", max_size=8)


@pytest.mark.parametrize(
    ("command", "name"), [("inbox", "limit"), ("inbox", "after"), ("send", "duration")]
)
@given(text=_NUMBERS)
@example(text="50")
@example(text="0")
@example(text="1001")
@example(text=" 7 ")
@example(text="1_0")
@example(text="\u0663")
@example(text="+5")
@example(text="-0")
@example(text="1e3")
@example(text="nan")
@example(text="-inf")
def test_plain_numbers_convert_as_typer_does(command: str, name: str, text: str) -> None:
    """A value the plain converter takes gets typer's result; any other, typer's refusal."""
    from typer._coercion import build_runtime_param

    param = _params(command)[name]  # int 1..1000, int >= 0, float >= 0
    typer_s = build_runtime_param(param.type_descriptor)._coerce_value
    expected = _converted(typer_s, param, text)
    got = _converted(param.get_runtime_param()._coerce_value, param, text)
    assert got == expected
    assert type(got) is type(expected)


def test_bad_values_keep_typer_s_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("dchat_sdk.RemoteClient", _FakeClient)
    for args in (
        ["inbox", "--limit", "0"],
        ["inbox", "--limit", "x"],
        ["send", "b", "--file", "/nx"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert "Invalid value" in result.output


class _FakeClient:
    sent: list[dict[str, Any]] = []  # noqa: RUF012 (a test's record)

    @classmethod
    def from_data_dir(cls, data_dir: Path) -> _FakeClient:
        return cls()

    def __enter__(self) -> _FakeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def request(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.sent.append(body)
        return {"message_id": "m1"}


def test_send_dash_reads_the_text_from_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("dchat_sdk.RemoteClient", _FakeClient)
    _FakeClient.sent.clear()
    result = runner.invoke(app, ["send", "bob", "-"], input="two\nlines\n")
    assert result.exit_code == 0, result.output
    assert _FakeClient.sent == [{"to": "bob", "text": "two\nlines"}]


def test_passphrase_is_asked_without_echo_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []
    monkeypatch.delenv("DCHAT_PASSPHRASE", raising=False)
    monkeypatch.setattr(_common.sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(_common.getpass, "getpass", lambda prompt: asked.append(prompt) or "s3")
    assert _common.read_passphrase(None, "DCHAT_PASSPHRASE", "unlock") == b"s3"
    assert asked == ["passphrase to unlock: "]
    monkeypatch.setenv("DCHAT_PASSPHRASE", "from-env")
    assert _common.read_passphrase(None, "DCHAT_PASSPHRASE", "unlock") == b"from-env"
    assert len(asked) == 1  # the environment variable still wins, no prompt


def _one_line_failure(exc: BaseException, capsys: pytest.CaptureFixture[str]) -> str:
    def boom() -> None:
        raise exc

    with pytest.raises(typer.Exit):
        _common.guard(boom)
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


@pytest.mark.parametrize(
    ("exc", "words"),
    [
        (ExceptionGroup("nursery", [OSError(errno.EADDRINUSE, "in use")]), "--listen"),
        (ConfigError("cannot unlock the node key: wrong passphrase?"), "DCHAT_PASSPHRASE"),
        (ConfigError("cannot read validator.key: gone"), "init-testnet"),
    ],
)
def test_operator_errors_are_one_line_with_a_hint(
    exc: BaseException, words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    line = _one_line_failure(exc, capsys)
    assert line.startswith("error:")
    assert "hint:" in line
    assert words in line


def test_a_validator_without_its_key_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real run: the error comes out of trio's nursery (an exception group)."""
    monkeypatch.setenv("DCHAT_PASSPHRASE", "a passphrase")
    root = logging.getLogger()  # `run` configures logging for the process: put it back after
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    assert (
        runner.invoke(
            node_app,
            [
                "init",
                "--data-dir",
                str(tmp_path),
                "--role",
                "validator",
                "--listen",
                "127.0.0.1:0",
                "--api-listen",
                "127.0.0.1:0",
            ],
        ).exit_code
        == 0
    )
    result = runner.invoke(node_app, ["run", "--data-dir", str(tmp_path), "--log-level", "error"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "validator.key" in errors[0]
    assert "hint:" in errors[0]


def test_no_running_node_has_a_hint(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--data-dir", str(tmp_path), "inbox"])
    assert result.exit_code == 1
    assert "hint:" in result.output
    assert "dchat-node run" in result.output


class _LinkClient(_FakeClient):
    calls: list[tuple[str, object]] = []  # noqa: RUF012

    def create_group_link(self, group: str, *, uses: int, expires_in: int) -> dict[str, Any]:
        self.calls.append(("create", (group, uses, expires_in)))
        return {"link": "dchat-group:abc", "id": "00ff"}

    def join_group_by_link(self, link: str) -> str:
        self.calls.append(("link", link))
        return "ab" * 32

    def join_group(self, group: str) -> str:
        self.calls.append(("join", group))
        return group


def test_group_links_from_the_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("dchat_sdk.RemoteClient", _LinkClient)
    _LinkClient.calls.clear()
    made = runner.invoke(
        app, ["group", "link", "create", "team", "--uses", "3", "--expires", "12h"]
    )
    assert made.exit_code == 0, made.output
    assert made.output.strip() == "dchat-group:abc"
    assert runner.invoke(app, ["group", "join", "dchat-group:abc"]).exit_code == 0
    assert runner.invoke(app, ["group", "join", "team"]).exit_code == 0  # an invitation
    assert _LinkClient.calls == [
        ("create", ("team", 3, 12 * 3600)), ("link", "dchat-group:abc"), ("join", "team"),
    ]  # fmt: skip
    bad = runner.invoke(app, ["group", "link", "create", "team", "--expires", "soon"])
    assert bad.exit_code != 0
    assert len(_LinkClient.calls) == 3  # nothing asked of the node
