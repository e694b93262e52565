"""Run the decoder fuzz targets under atheris (coverage-guided libFuzzer) for a bounded time.

Usage::

    uv run python fuzz/run.py --seconds 10              # every target, 10 s each
    uv run python fuzz/run.py --seconds 300 blocks      # one target, five minutes

Theory of operation. libFuzzer owns the process it runs in and exits it when
done, so each target (``targets.TARGETS``) fuzzes in a process of its own.
Importing the dchat packages under atheris' coverage instrumentation costs
about twice a 5 s run, so one child process does it once and then forks a
process per target (``--jobs`` at a time, one per core by default), which
inherits the instrumented modules. Each forked process writes the target's
seeds (``targets.seeds``, built by the real encoders, plus the Noise vectors of
``../shared/vectors`` when present) and every input kept in
``regressions/<target>/`` into a fresh working corpus, and fuzzes for
``--seconds``. A crash (an input for which the target raised anything but the
decoder's typed error, or a failed round-trip) makes libFuzzer write the input
to an artifact file; this parent (never instrumented) copies it into
``regressions/<target>/`` under its SHA-256, prints where, and exits 1.
Fix the decoder, keep the file:
``packages/dchat-testing/tests/test_fuzz_regressions.py`` replays every file
there on every test run.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REGRESSIONS = HERE / "regressions"
PACKAGES = (
    "dchat_core",
    "dchat_crypto",
    "dchat_identity",
    "dchat_messaging",
    "dchat_network",
    "dchat_chain",
)


def _vectors() -> Path | None:
    override = os.environ.get("DCHAT_VECTORS")
    path = Path(override) if override else HERE.parent.parent / "shared" / "vectors"
    return path if path.is_dir() else None


def child(names: list[str], seconds: int, work: Path, jobs: int) -> None:
    """Instrument once, then fuzz each of ``names`` in a forked process, ``jobs`` at a time.

    Target ``name`` works in ``work/name``: ``corpus/``, ``artifacts/``, its
    libFuzzer output in ``log`` and its exit status in ``status``.
    """
    import atheris

    sys.path.insert(0, str(HERE))
    with atheris.instrument_imports(include=list(PACKAGES)):
        import targets

    running: dict[int, str] = {}
    for name in names:
        while len(running) >= jobs:
            _reap(running, work)
        pid = os.fork()
        if pid == 0:  # libFuzzer exits this process when it is done
            _fuzz_here(targets, name, seconds, work / name)
        running[pid] = name
    while running:
        _reap(running, work)


def _reap(running: dict[int, str], work: Path) -> None:
    pid, status = os.wait()
    name = running.pop(pid)
    (work / name / "status").write_text(str(os.waitstatus_to_exitcode(status)))


def _fuzz_here(targets: Any, name: str, seconds: int, folder: Path) -> None:
    """In a forked process: fuzz ``name`` in ``folder``.

    It never returns: libFuzzer exits the process when time is up, and a crash
    leaves as ``SystemExit``, which unwinds out of :func:`child`'s loop to a
    normal interpreter exit (where libFuzzer writes the crash input).
    """
    import atheris

    try:
        corpus, artifacts = folder / "corpus", folder / "artifacts"
        log = os.open(folder / "log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        target = targets.TARGETS[name]
        inputs = [*targets.seeds(name, _vectors())]
        kept = REGRESSIONS / name
        if kept.is_dir():
            inputs += [p.read_bytes() for p in sorted(kept.iterdir()) if p.is_file()]
        for data in inputs:
            (corpus / hashlib.sha256(data).hexdigest()[:16]).write_bytes(data)
        args = [
            sys.argv[0],
            f"-max_total_time={seconds}",
            f"-artifact_prefix={artifacts}/",
            "-timeout=20",
            "-rss_limit_mb=2048",
            "-max_len=8192",
            "-print_final_stats=1",
            str(corpus),
        ]
        atheris.Setup(args, target)
        atheris.Fuzz()
    except Exception:  # the target could not start (a crash ends in SystemExit)
        traceback.print_exc()
        os._exit(70)


def fuzz(names: list[str], seconds: int, jobs: int) -> list[Path]:
    """Fuzz ``names`` in a child process; returns the crash inputs kept."""
    with tempfile.TemporaryDirectory(prefix="dchat-fuzz-") as tmp:
        work = Path(tmp)
        for name in names:
            (work / name / "corpus").mkdir(parents=True)
            (work / name / "artifacts").mkdir()
        command = [sys.executable, __file__, "--child", "--seconds", str(seconds)]
        command += ["--jobs", str(jobs), "--work", str(work), *names]
        started = time.monotonic()
        rounds = -(-len(names) // jobs)
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=rounds * (seconds * 3 + 60) + 120,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        took = time.monotonic() - started
        print(f"{len(names)} targets, {jobs} at a time, in {took:.0f} s", flush=True)
        if done.returncode != 0:
            print(done.stdout[-3000:], done.stderr[-6000:], file=sys.stderr)
        kept = [path for name in names for path in _collect(name, work / name)]
        if done.returncode != 0 and not kept:
            kept.append(Path(f"<the fuzzing child exited {done.returncode}>"))
        return kept


def _collect(name: str, folder: Path) -> list[Path]:
    """Report target ``name``'s run and keep its crash inputs under ``regressions/``."""
    log_file, status_file = folder / "log", folder / "status"
    log = log_file.read_text(errors="replace") if log_file.exists() else ""
    status = int(status_file.read_text()) if status_file.exists() else None
    stats = [line for line in log.splitlines() if line.startswith("stat::")]
    runs = next((line.split()[-1] for line in stats if "number_of_executed_units" in line), "?")
    print(f"{name}: {runs} inputs, exit {status}", flush=True)
    kept = []
    for artifact in sorted((folder / "artifacts").iterdir()):
        data = artifact.read_bytes()
        path = REGRESSIONS / name / hashlib.sha256(data).hexdigest()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        kept.append(path)
    if status != 0 or kept:
        print(log[-6000:], file=sys.stderr)
        if not kept:
            kept.append(Path(f"<{name} exited {status} without an artifact>"))
    return kept


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", help="target names (default: all)")
    parser.add_argument("--seconds", type=int, default=10, help="seconds per target")
    cores = os.cpu_count() or 1
    parser.add_argument("--jobs", type=int, default=cores, help="targets at a time (cores)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.targets, args.seconds, args.work, max(1, args.jobs))
        return 0
    sys.path.insert(0, str(HERE))
    from targets import TARGETS

    names = args.targets or list(TARGETS)
    unknown = sorted(set(names) - set(TARGETS))
    if unknown:
        parser.error(f"unknown targets {unknown}; known: {sorted(TARGETS)}")
    crashes = fuzz(names, args.seconds, max(1, args.jobs))
    for path in crashes:
        print(f"crash kept: {path}", file=sys.stderr)
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
