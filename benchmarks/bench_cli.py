"""The ``dchat`` client command's start-up cost: CPU and wall time per invocation.

A relay and two user nodes (alice, bob) run as processes; each row below is a
fresh process, timed from spawn to exit, its CPU (user + system) read from the
kernel's accounting of waited-for children. In one run, rounds interleaved:

- **python -c pass**: the interpreter's own floor;
- **httpx send / httpx inbox**: ``python -c`` importing httpx and making the same
  HTTP call the command makes (``POST /v1/messages``, ``GET /v1/conversations``),
  URL and token given on its command line: a Python script's usual client;
- **http.client send**: the same send with the standard library only: the floor
  of any Python client;
- **dchat --help**, **dchat send bob TEXT**, **dchat inbox**: the real
  entry point (``.venv/bin/dchat``) against alice's node.

Medians over ``--repeats`` rounds after one warm-up round (bytecode cached: with
``PYTHONDONTWRITEBYTECODE`` set, as on this machine, the commands write their
bytecode to a private ``PYTHONPYCACHEPREFIX`` instead of compiling every run). The
target (issue 19) is under 0.3 s of CPU for ``--help`` and ``send``. The last
printed line is ``cli: --help <A> s CPU, send <B> s CPU, python -c pass <C> s``.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import _common

if TYPE_CHECKING:
    import argparse


NAME = "bench_cli"
_HTTPX = (
    "import sys, httpx; url, token, what = sys.argv[1:4]; "
    "h = {'Authorization': 'Bearer ' + token}; "
    "r = httpx.post(url + '/v1/messages', json={'to': 'bob', 'text': 'hi'}, headers=h) "
    "if what == 'send' else httpx.get(url + '/v1/conversations', headers=h); "
    "r.raise_for_status()"
)
_STDLIB = (
    "import sys, json, http.client, urllib.parse; url, token = sys.argv[1:3]; "
    "u = urllib.parse.urlsplit(url); c = http.client.HTTPConnection(u.hostname, u.port); "
    "c.request('POST', '/v1/messages', json.dumps({'to': 'bob', 'text': 'hi'}), "
    "{'Authorization': 'Bearer ' + token, 'Content-Type': 'application/json'}); "
    "r = c.getresponse(); r.read(); assert r.status < 300, r.status"
)


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one run of ``command``, which must succeed."""
    before = os.times()
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, timeout=120)
    wall = time.perf_counter() - start
    after = os.times()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return cpu, wall


def commands(alice: Path) -> dict[str, list[str]]:
    """Each row's command line."""
    dchat = shutil.which("dchat", path=str(Path(sys.executable).parent)) or "dchat"
    info = json.loads((alice / "api.json").read_text())
    py = sys.executable
    return {
        "python -c pass": [py, "-c", "pass"],
        "httpx: POST /v1/messages": [py, "-c", _HTTPX, info["url"], info["token"], "send"],
        "httpx: GET /v1/conversations": [py, "-c", _HTTPX, info["url"], info["token"], "inbox"],
        "http.client: POST /v1/messages": [py, "-c", _STDLIB, info["url"], info["token"]],
        "dchat --help": [dchat, "--help"],
        "dchat send bob TEXT": [dchat, "send", "bob", "hi"],
        "dchat inbox": [dchat, "inbox"],
    }


def run(args: argparse.Namespace) -> dict[str, list[tuple[float, float]]]:
    """Every row's (CPU, wall) per round."""
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        nodes = _common.start_nodes(Path(tmp))
        try:
            env = {**os.environ, "DCHAT_DATA_DIR": str(nodes["alice"].data_dir)}
            if env.pop("PYTHONDONTWRITEBYTECODE", None):
                env.setdefault("PYTHONPYCACHEPREFIX", str(Path(tmp) / "pycache"))
            rows = commands(nodes["alice"].data_dir)
            runs = {name: (lambda c=command: timed(c, env)) for name, command in rows.items()}
            _common.interleaved_rounds(runs, 1)  # warm-up: bytecode, the session to bob
            return _common.interleaved_rounds(runs, args.repeats)
        finally:
            for node in nodes.values():
                node.stop()


def section(results: dict[str, list[tuple[float, float]]], argv: list[str]) -> str:
    """The Markdown section for ``docs/benchmarks.md``."""
    start, end = _common.markers(NAME)
    floor = statistics.median(cpu for cpu, _ in results["python -c pass"])
    lines = [
        start,
        "## dchat CLI start-up (`bench_cli.py`)",
        "",
        *_common.run_lines(
            NAME,
            argv,
            f"load average {_common.load_averages()} at the start",
            _common.load_at_end(),
            "shared with other jobs (the figures include their contention)",
        ),
        "",
        "| command (a fresh process) | CPU median (s) | CPU min (s) | wall median (s) "
        "| CPU over `python -c pass` |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, samples in results.items():
        cpu = [c for c, _ in samples]
        wall = [w for _, w in samples]
        lines.append(
            f"| `{name}` | {statistics.median(cpu):.3f} | {min(cpu):.3f} "
            f"| {statistics.median(wall):.3f} | {statistics.median(cpu) / floor:.1f}x |"
        )
    lines += [
        "",
        "CPU is user + system of the child process (it waits on it). `dchat` imports typer",
        "and its command table; a command loads only its own module and what it calls:",
        "`send` the SDK's `RemoteClient`, whose plain calls use `http.client` (no httpx, no",
        "pydantic, no rich); `inbox` adds rich for its table. The node's server, storage and",
        "chain load in `dchat-node` (and `dchat wallet`). The httpx rows import httpx as a",
        "script would (httpcore then loads trio and anyio); the `http.client` row is the",
        "floor of any Python client making the call: the difference to `dchat send` is",
        "typer, the command table and the SDK.",
        end,
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = _common.arg_parser(__doc__)
    parser.add_argument("--repeats", type=int, default=10, help="rounds after the warm-up")
    args = parser.parse_args(argv)
    results = run(args)
    _common.publish(NAME, section(results, argv), args)

    def cpu(name: str) -> float:
        return statistics.median(c for c, _ in results[name])

    print(
        f"cli: --help {cpu('dchat --help'):.3f} s CPU, send {cpu('dchat send bob TEXT'):.3f} "
        f"s CPU, python -c pass {cpu('python -c pass'):.3f} s"
    )


if __name__ == "__main__":
    main()
