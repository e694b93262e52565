"""The README's commands, run as a reader runs them (issue 19, item 4).

The walkthrough (the ``sh`` blocks between ``<!-- walkthrough:start -->`` and
``<!-- walkthrough:end -->``) is joined into one bash script and run in a fresh
temporary folder, with ``HOME`` and ``TMPDIR`` there (so ``mktemp -d`` gives
fresh data directories), the relay on a free port (``RELAY_PORT``, which the
README reads with a default) and no ``DCHAT_*`` variables of ours. Its bash
runs in a session of its own: whatever it leaves running afterwards, or on a
timeout, is killed and fails the test.

Every other command block of the README is run here too (the quick benchmark)
or named in :data:`ELSEWHERE` with the test or CI step that runs it, and that
test is checked to exist: a new README command without one fails.

The ``dchat`` and ``dchat-node`` commands of the README and of the longer tours in
``docs/`` (blocks and inline code) are also parsed against the command lines, without
running them: each subcommand and option they name must exist, with no more
arguments than the command takes.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import typer

from dchat_node import free_port
from dchat_node.cli import app, node_app

REPO = Path(__file__).resolve().parents[3]
README = REPO / "README.md"
START, END = "<!-- walkthrough:start -->", "<!-- walkthrough:end -->"
BLOCK = re.compile(r"^( *)```sh\n(.*?)^\1```", re.MULTILINE | re.DOTALL)
MARK = "@@readme block {}@@"
TIMEOUT = 300.0  # it took 111-147 s at load 11 on 2 cores; CPU: about 35 s

#: README command lines outside the walkthrough, and what runs each: a file of
#: the repository and the text in it that runs the command (a test's ``def``,
#: or the line of the CI script).
ELSEWHERE = {
    "pip install uv": (".ci/run", "pip install --quiet uv"),
    "uv run dchat demo": (
        "packages/dchat-node/tests/test_end_to_end.py",
        "def test_demo_exits_zero_and_bob_reads_alice(",
    ),
    "uv run pytest": (".ci/run", "\nuv run pytest\n"),
    "uv run python benchmarks/bench_link.py --no-write --messages 2000 --pings 200 --repeats 1": (
        "packages/dchat-node/tests/test_readme.py",
        "def test_the_quick_benchmark_runs(",
    ),
}


def _readme() -> str:
    return README.read_text(encoding="utf-8")


def walkthrough_blocks(text: str) -> list[str]:
    """The ``sh`` blocks between the walkthrough markers, in order."""
    start, end = text.index(START), text.index(END)
    return [textwrap.dedent(block) for _, block in BLOCK.findall(text[start:end])]


def other_command_lines(text: str) -> list[str]:
    """Each command line of the README's ``sh`` blocks outside the walkthrough.

    A line's trailing ``# comment`` is dropped; so are blank lines.
    """
    outside = text[: text.index(START)] + text[text.index(END) :]
    lines = []
    for _, block in BLOCK.findall(outside):
        for line in block.splitlines():
            command = line.split("  #")[0].strip()
            if command:
                lines.append(command)
    return lines


#: A documented command line: ``dchat`` or ``dchat-node``, maybe after ``uv run``,
#: ``sudo -u USER`` or an install path such as ``/opt/dchat/bin/``.
CLI = re.compile(r"^(?:uv run |sudo -u \S+ )?(?:/\S*/)?(dchat|dchat-node) (.*)$")


INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")


def cli_lines(text: str) -> list[str]:
    """The ``dchat`` and ``dchat-node`` commands in ``text``, as ``dchat ...``.

    Those of its ``sh`` blocks (continued lines joined, comments dropped,
    ``a && b`` counted as two), then those in inline code such as ``dchat open``.
    """
    commands = []
    for _, block in BLOCK.findall(text):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            commands += line.split("  #")[0].split("&&")
    commands += INLINE.findall(BLOCK.sub("", text))
    found = [CLI.match(command.strip()) for command in commands]
    return [f"{m[1]} {m[2]}" for m in found if m]


def _option(command: Any, name: str) -> Any:
    for param in command.params:
        if param.param_type_name == "option" and name in (*param.opts, *param.secondary_opts):
            return param
    return None


def parse_problem(line: str) -> str | None:
    """What is wrong with ``line`` (``dchat ...`` or ``dchat-node ...``), or ``None``.

    Checked without running it: each subcommand and option must exist, and a
    command is given no more arguments than it takes. (Typer brings its own
    click, ``typer._click``: a group is told apart by its ``get_command``.)
    """
    words = shlex.split(line.split(" >")[0].split(" &")[0])  # no redirections, no `&`
    command: Any = typer.main.get_command(app if words[0] == "dchat" else node_app)
    path, arguments, i = words[0], 0, 1
    while i < len(words):
        word = words[i]
        if word in ("--help", "..."):  # the rest is help, or left out
            return None
        if word.startswith("-") and word != "-":
            option = _option(command, word.split("=")[0])
            if option is None:
                return f"{path} has no option {word.split('=')[0]}"
            i += 1 if option.is_flag or "=" in word else 2
            continue
        if hasattr(command, "get_command"):
            found = command.get_command(typer.Context(command), word)
            if found is None:
                return f"{path} has no command {word}"
            real = getattr(found, "real", None)  # a lazy group (`dchat wallet`) loads itself
            command, path = (real(typer.Context(command)) if real else found), f"{path} {word}"
        else:
            arguments += 1
        i += 1
    takes = [p for p in command.params if p.param_type_name == "argument"]
    if not any(p.nargs == -1 for p in takes) and arguments > sum(p.nargs for p in takes):
        return f"{path} takes {sum(p.nargs for p in takes)} arguments, given {arguments}"
    return None


def _script(blocks: list[str]) -> str:
    """One bash script: stop at the first failing command, a marker before each block."""
    parts = ["set -eu"]
    for number, block in enumerate(blocks):
        parts += [f"echo '{MARK.format(number)}'", block]
    return "\n".join(parts) + "\n"


def _outputs(stdout: str, count: int) -> list[str]:
    """``stdout`` split into what each block printed."""
    pieces = []
    for number in range(count):
        _, _, rest = stdout.partition(MARK.format(number) + "\n")
        pieces.append(rest.split("@@readme block ")[0])
        stdout = rest
    return pieces


def _env(tmp: Path) -> dict[str, str]:
    home, temp = tmp / "home", tmp / "tmp"
    home.mkdir()
    temp.mkdir()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DCHAT_", "XDG_", "RELAY_PORT"))
    }
    env.update(
        HOME=str(home),
        TMPDIR=str(temp),
        RELAY_PORT=str(free_port()),
        UV_PROJECT=str(REPO),  # `uv run` from the fresh folder finds this checkout
        UV_NO_SYNC="1",  # and runs in its environment as it is (the one under test)
        COLUMNS="200",  # tables unwrapped, so a text is found on one line
    )
    return env


def _session_processes(sid: int) -> list[int]:
    """Pids of the processes of session ``sid`` still alive (Linux ``/proc``)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[3]) == sid and fields[0] != "Z":
                pids.append(int(stat.parent.name))
    return pids


def _kill_session(sid: int) -> list[int]:
    """Kill what is left of session ``sid``; returns the pids that were left."""
    left = _session_processes(sid)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return left


def _logs(temp: Path) -> str:
    tails = []
    for log in sorted(temp.glob("*/*.log")):
        lines = log.read_text(errors="replace").splitlines()[-8:]
        tails.append(f"--- {log.name}\n" + "\n".join(lines))
    return "\n".join(tails)


def test_the_walkthrough_is_marked_and_takes_its_port_from_the_environment() -> None:
    blocks = walkthrough_blocks(_readme())
    assert len(blocks) >= 5
    script = "\n".join(blocks)
    assert "RELAY_PORT=${RELAY_PORT:-" in script  # the test picks a free port through it
    assert "$(mktemp -d)" in script  # fresh data directories under $TMPDIR
    kill = next(line for line in script.splitlines() if line.startswith("kill "))
    for who in ("relay", "alice", "bob"):
        assert f"${who}_pid" in kill  # every node is stopped


def test_every_other_readme_command_is_run_by_a_test() -> None:
    lines = other_command_lines(_readme())
    assert "uv run dchat demo" in lines
    assert lines[:3] == ["pip install uv", "uv run dchat demo", "uv run pytest"]  # house rule
    for line in lines:
        assert line in ELSEWHERE, f"README command without a test: {line!r} (add it to ELSEWHERE)"
        path, evidence = ELSEWHERE[line]
        assert evidence in (REPO / path).read_text(), f"{line!r}: {path} no longer has {evidence!r}"


@pytest.mark.parametrize("doc", ["README.md", "docs/cli.md", "docs/operations.md"])
def test_every_documented_command_line_parses(doc: str) -> None:
    lines = cli_lines((REPO / doc).read_text(encoding="utf-8"))
    assert lines
    problems = [f"{line}\n    -> {parse_problem(line)}" for line in lines if parse_problem(line)]
    assert not problems, "\n".join(problems)


def test_a_wrong_option_or_command_is_caught() -> None:
    # the README once showed `backup init --data-dir`, an option `backup init` does not have
    assert parse_problem("dchat-node backup init --data-dir /tmp/a --repo /tmp/b") == (
        "dchat-node backup init has no option --data-dir"
    )
    assert parse_problem("dchat --data-dir /tmp/a sned bob hi") == "dchat has no command sned"
    assert parse_problem("dchat send bob hi there") == "dchat send takes 2 arguments, given 3"
    assert parse_problem("dchat wallet balance --node /tmp/n ACCOUNT") is None  # lazy group
    assert parse_problem("dchat --data-dir /tmp/a send bob -") is None


@pytest.mark.slow
def test_the_quick_benchmark_runs() -> None:
    (line,) = [x for x in other_command_lines(_readme()) if "benchmarks/" in x]
    done = subprocess.run(
        ["bash", "-c", line],
        cwd=REPO,
        env={**os.environ, "UV_NO_SYNC": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| dchat |" in done.stdout


@pytest.mark.slow
def test_the_walkthrough_runs_as_pasted(tmp_path: Path) -> None:
    if shutil.which("uv") is None:
        pytest.skip("uv is not on PATH (the README runs every command with it)")
    blocks = walkthrough_blocks(_readme())
    env = _env(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    started = time.monotonic()
    proc = subprocess.Popen(
        ["bash", "-c", _script(blocks)],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        _kill_session(proc.pid)
        stdout, stderr = proc.communicate()
        pytest.fail(
            f"the walkthrough did not finish in {TIMEOUT:.0f} s\n{stdout}\n{stderr}\n"
            + _logs(tmp_path / "tmp")
        )
    finally:
        left = _kill_session(proc.pid)
    elapsed = time.monotonic() - started
    report = f"{stdout}\n--- stderr\n{stderr}\n{_logs(tmp_path / 'tmp')}"
    assert proc.returncode == 0, report
    assert not left, f"processes left running after the walkthrough: {left}\n{report}"
    print(f"the README walkthrough ran in {elapsed:.1f} s")

    outputs = list(zip(blocks, _outputs(stdout, len(blocks)), strict=True))

    def printed_by(command: str) -> str:
        (printed,) = [out for block, out in outputs if command in block]
        return printed

    cards = printed_by("contact add")
    assert cards.count("dchat-card:") == 2, report  # `init` prints the card
    assert "added bob" in cards, report
    assert "added alice" in cards, report
    assert printed_by(" send ").count("queued dcmsg1") == 2, report
    received = [line for line in printed_by(" show ").splitlines() if "←" in line]
    assert any("hi bob, this is alice" in line for line in received), report  # bob's view
    assert any("hello alice, bob here" in line for line in received), report  # alice's view

    (data,) = (tmp_path / "tmp").glob("tmp.*")  # the walkthrough's one `mktemp -d`
    for node in ("relay", "alice", "bob"):
        assert not (data / node / "api.json").exists(), f"{node} did not stop cleanly"
        assert "stopping on signal SIGTERM" in (data / f"{node}.log").read_text(), node
