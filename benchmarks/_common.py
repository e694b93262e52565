"""Plumbing shared by the ``bench_*.py`` scripts.

Each script measures its own workload and formats its own table; what they all
need besides is here: the run's header lines (date, machine, command), the
command-line parser with ``--no-write``, interleaved timing rounds, and
replacing the script's own section of ``docs/benchmarks.md``.

The scripts import this module as ``_common``: run as
``uv run python benchmarks/<script>.py``, Python puts ``benchmarks/`` first on
``sys.path``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from dchat_node import NodeProcess

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"

K = TypeVar("K")


# -- the machine and the run -------------------------------------------------------------------


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo``, or a best guess elsewhere."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return match.group(1).strip() if match else "unknown"


def load_averages() -> str:
    """The 1-, 5- and 15-minute load averages, comma separated ("unknown" if unavailable)."""
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def load_at_end() -> str:
    """A machine-line note with the 1-minute load average, read now (after measuring)."""
    return f"1-min load average at the end {os.getloadavg()[0]:.2f}"


def run_lines(name: str, argv: list[str], *extras: str, cpu: bool = True) -> list[str]:
    """The ``- Date``, ``- Machine`` and ``- Command`` lines that open every section.

    ``name`` is the script's name without ``.py``; ``extras`` are appended to the
    machine line, each after ``; ``; ``cpu=False`` leaves the CPU model out.
    """
    machine = [platform.platform()]
    if cpu:
        machine.append(f"CPU: {cpu_model()}")
    machine += [f"{os.cpu_count()} cores", f"Python {platform.python_version()}", *extras]
    command = " ".join([f"uv run python benchmarks/{name}.py", *argv])
    return [
        f"- Date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
        f"- Machine: {'; '.join(machine)}",
        f"- Command: `{command}`",
    ]


# -- command line ------------------------------------------------------------------------------


def arg_parser(doc: str | None) -> argparse.ArgumentParser:
    """A parser described by the first paragraph of ``doc``, with ``--no-write``."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parser.add_argument("--no-write", action="store_true", help="print only, leave docs alone")
    return parser


# -- timing ------------------------------------------------------------------------------------


def interleaved_rounds(runs: Mapping[K, Callable[[], float]], repeats: int) -> dict[K, list[float]]:
    """Call every run once per round, for ``repeats`` rounds; each run's results in order.

    Interleaving means a burst of load from other processes on a shared machine
    hits all rows alike instead of one. Warm-ups are the caller's business.
    """
    results: dict[K, list[float]] = {key: [] for key in runs}
    for _ in range(repeats):
        for key, run in runs.items():
            results[key].append(run())
    return results


# -- docs/benchmarks.md ------------------------------------------------------------------------


def markers(name: str) -> tuple[str, str]:
    """The comments that delimit ``name``'s section of the docs file."""
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def write_section(name: str, text: str, path: Path = DOCS) -> None:
    """Replace ``name``'s delimited section of ``path`` with ``text``, or append it.

    Everything outside the markers is kept; the file is created if missing.
    """
    start, end = markers(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(old):
        new = pattern.sub(lambda _: text, old, count=1)
    else:
        new = old.rstrip("\n") + "\n\n" + text + "\n"
    path.write_text(new)


def publish(name: str, text: str, args: argparse.Namespace) -> None:
    """Print the section; unless ``--no-write`` was given, write it to the docs too."""
    print(text)
    if not args.no_write:
        write_section(name, text)
        print(f"wrote {DOCS.relative_to(ROOT)}", file=sys.stderr)


def start_nodes(root: Path) -> dict[str, NodeProcess]:
    """A relay and two user nodes with identities that hold each other's cards."""
    import secrets

    from dchat_node import NodeProcess, free_port

    passphrase = secrets.token_urlsafe(16)
    relay_addr = f"127.0.0.1:{free_port()}"
    relay = NodeProcess(root / "relay", "relay", passphrase=passphrase, listen=relay_addr)
    relay.start()
    nodes = {"relay": relay}
    for name in ("alice", "bob"):
        node = NodeProcess(root / name, "user", passphrase=passphrase, relay=relay_addr)
        node.start()
        nodes[name] = node
        with node.client() as client:
            client.create_identity(name)
    with nodes["alice"].client() as alice, nodes["bob"].client() as bob:
        alice.add_contact("bob", bob.card())
        bob.add_contact("alice", alice.card())
    return nodes
