"""The deployment files in ``deploy/``: systemd units, the backup timer, the container file.

The units are checked by ``systemd-analyze verify`` (on copies whose
``/opt/dchat/bin`` is this environment's bin directory, since verify needs the
programs to exist), their ``dchat-node`` command lines by the real CLI, and the
backup service by running its commands, in its order, against a real data
directory and repository. The container file cannot be built here (no
network); what it names is checked instead.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dchat_node.cli._init import ROLE_ADDRESSES

REPO = Path(__file__).resolve().parents[3]
DEPLOY = REPO / "deploy"
SYSTEMD = DEPLOY / "systemd"
INSTALLED_BIN = "/opt/dchat/bin"
LOCAL_BIN = str(Path(sys.executable).parent)
ROLES = tuple(ROLE_ADDRESSES)
SANDBOX = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "CapabilityBoundingSet": "",
    "SystemCallArchitectures": "native",
    "StateDirectoryMode": "0700",
    "UMask": "0077",
}


def _directives(path: Path) -> list[tuple[str, str]]:
    """(key, value) of every setting line, in order (continuations joined)."""
    text = re.sub(r"\\\n", " ", path.read_text())
    lines = (line.strip() for line in text.splitlines())
    return [
        (key.strip(), value.strip())
        for key, _, value in (line.partition("=") for line in lines)
        if value or _ == "="
        if key and not key.startswith(("#", ";", "["))
    ]


def _installable_copy(tmp_path: Path) -> list[Path]:
    """The units with this environment's bin directory, templates instantiated for a relay."""
    copies = []
    for unit in sorted(SYSTEMD.glob("*.service")) + sorted(SYSTEMD.glob("*.timer")):
        name = unit.name.replace("@.", "@relay.")
        target = tmp_path / name
        target.write_text(unit.read_text().replace(INSTALLED_BIN, LOCAL_BIN))
        copies.append(target)
    return copies


def test_every_role_has_a_unit_and_the_backup_has_a_timer() -> None:
    names = {p.name for p in SYSTEMD.iterdir()}
    assert {f"dchat-{role}.service" for role in ROLES} <= names
    assert {"dchat-backup@.service", "dchat-backup@.timer"} <= names


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)
def test_systemd_analyze_verify_accepts_every_unit(tmp_path: Path) -> None:
    assert Path(LOCAL_BIN, "dchat-node").exists()
    units = _installable_copy(tmp_path)
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *map(str, units)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "SYSTEMD_LOG_LEVEL": "notice"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""  # not even a warning (an unknown key, ...)


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)
def test_verify_would_catch_a_broken_unit(tmp_path: Path) -> None:
    """The check above can fail: a missing program or an unknown key is reported."""
    broken = tmp_path / "dchat-relay.service"
    text = (SYSTEMD / "dchat-relay.service").read_text()
    broken.write_text(text.replace("Restart=on-failure", "Restart=on-failure\nFrobnicate=1"))
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(broken)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "dchat-node is not executable" in result.stderr
    assert "Frobnicate" in result.stderr


@pytest.mark.parametrize(
    "unit", [f"dchat-{role}.service" for role in ROLES] + ["dchat-backup@.service"]
)
def test_each_service_is_sandboxed(unit: str) -> None:
    settings = _directives(SYSTEMD / unit)
    found = dict(settings)
    for key, value in SANDBOX.items():
        assert found.get(key) == value, (unit, key)
    filters = [value for key, value in settings if key == "SystemCallFilter"]
    assert filters[0] == "@system-service"
    assert "~@privileged" in filters[1]
    assert found.get("DynamicUser") == "yes" or found.get("User") == "dchat-user"
    assert found["LoadCredential"].endswith(".passphrase")  # never in the unit or the command


def _exec_lines(unit: str) -> list[str]:
    return [v for k, v in _directives(SYSTEMD / unit) if k in ("ExecStart", "ExecStartPre")]


@pytest.mark.parametrize("role", ROLES)
def test_each_role_unit_runs_its_role_on_its_state_directory(role: str) -> None:
    (line,) = _exec_lines(f"dchat-{role}.service")
    args = shlex.split(line)
    assert args[:2] == [f"{INSTALLED_BIN}/dchat-node", "run"]
    assert args[args.index("--role") + 1] == role
    assert args[args.index("--data-dir") + 1] == f"%S/dchat-{role}"
    assert dict(_directives(SYSTEMD / f"dchat-{role}.service"))["StateDirectory"] == (
        f"dchat-{role}"
    )


def _expand(line: str, specifiers: dict[str, str]) -> list[str]:
    """A unit's command line as systemd would run it: specifiers, then $$ to $."""
    for spec, value in specifiers.items():
        line = line.replace(spec, value)
    return [arg.replace("$$", "$") for arg in shlex.split(line)]


@pytest.mark.parametrize(
    "unit", [f"dchat-{role}.service" for role in ROLES] + ["dchat-backup@.service"]
)
def test_every_dchat_node_command_line_is_accepted_by_the_cli(unit: str, tmp_path: Path) -> None:
    specifiers = {"%S": str(tmp_path), "%d": str(tmp_path), "%i": "relay"}
    for line in _exec_lines(unit):
        args = _expand(line, specifiers)
        if args[0] != f"{INSTALLED_BIN}/dchat-node":
            continue
        command = [sys.executable, "-m", "dchat_node", *args[1:], "--help"]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, (line, result.stdout, result.stderr)


def test_the_backup_service_creates_verifies_then_prunes() -> None:
    commands = [shlex.split(line)[1:3] for line in _exec_lines("dchat-backup@.service")]
    assert commands[1:] == [["backup", "create"], ["backup", "verify"], ["backup", "prune"]]
    timer = dict(_directives(SYSTEMD / "dchat-backup@.timer"))
    assert timer["OnCalendar"] == "daily"
    assert timer["Persistent"] == "true"


@pytest.mark.slow
def test_the_backup_service_commands_work_twice_on_a_real_data_dir(tmp_path: Path) -> None:
    """Run the unit's commands as systemd would (two runs: the first also creates the repo)."""
    state, creds = tmp_path / "state", tmp_path / "creds"
    (state / "dchat-relay").mkdir(parents=True, mode=0o700)
    (state / "dchat-relay" / "node.db").write_bytes(os.urandom(50_000))
    creds.mkdir()
    (creds / "backup-passphrase").write_text("correct horse battery staple\n")
    specifiers = {"%S": str(state), "%d": str(creds), "%i": "relay"}
    environment = dict(
        item.split("=", 1)
        for k, v in _directives(SYSTEMD / "dchat-backup@.service")
        if k == "Environment"
        for item in _expand(v, specifiers)
    )
    env = {**os.environ, **environment, "CREDENTIALS_DIRECTORY": str(creds)}
    env["PATH"] = f"{LOCAL_BIN}:{env['PATH']}"
    for run in range(2):
        for line in _exec_lines("dchat-backup@.service"):
            args = _expand(line.replace(INSTALLED_BIN, LOCAL_BIN), specifiers)
            result = subprocess.run(
                args, env=env, capture_output=True, text=True, timeout=300, check=False
            )
            assert result.returncode == 0, (run, line, result.stderr)
    assert "ok: 2 snapshots" in result.stdout or "kept 2 snapshots" in result.stdout
    assert (state / "dchat-relay-backup" / "config").exists()


def test_the_container_file_names_what_exists() -> None:
    text = re.sub(r"\\\n", " ", (DEPLOY / "Containerfile").read_text())
    copies = [line.split()[1:-1] for line in text.splitlines() if line.startswith("COPY ")]
    sources = [src for args in copies if not args[0].startswith("--from") for src in args]
    assert sources
    for source in sources:
        assert (REPO / source).exists(), source
    assert "uv sync --locked --no-dev --package dchat-node --no-editable" in text
    assert "USER dchat" in text
    assert 'ENTRYPOINT ["dchat-node"]' in text
    ignored = (REPO / ".dockerignore").read_text().split()
    assert "packages" not in ignored
    assert "uv.lock" not in ignored


@pytest.mark.skipif(shutil.which("uv") is None, reason="uv is not on PATH")
def test_the_container_build_step_resolves_offline(tmp_path: Path) -> None:
    """The Containerfile's ``uv sync``, run on this workspace's lock without installing."""
    text = (DEPLOY / "Containerfile").read_text()
    (step,) = re.findall(r"^RUN (uv sync .*)$", text, re.MULTILINE)
    result = subprocess.run(
        [*shlex.split(step), "--dry-run", "--offline"],
        cwd=REPO,
        env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(tmp_path / "venv")},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "dchat-node" in result.stdout + result.stderr
