"""Run the decoder fuzz targets under atheris (coverage-guided libFuzzer) for a bounded time.

Usage::

    uv run python fuzz/run.py --seconds 10              # every target, 10 s each
    uv run python fuzz/run.py --seconds 300 blocks      # one target, five minutes

Theory of operation. Each target (``targets.TARGETS``) runs in its own child
process, because libFuzzer owns the process it runs in and exits it when done.
The child imports the dchat packages under atheris' coverage instrumentation,
writes the target's seeds (``targets.seeds``, built by the real encoders, plus
the Noise vectors of ``../shared/vectors`` when present) and every input kept
in ``regressions/<target>/`` into a fresh working corpus, and fuzzes for
``--seconds``. A crash (an input for which the target raised anything but the
decoder's typed error, or a failed round-trip) makes libFuzzer write the input
to an artifact file; this parent copies it into ``regressions/<target>/`` under
its SHA-256, prints where, and exits 1. Fix the decoder, keep the file:
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
from pathlib import Path

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


def child(name: str, seconds: int, corpus: Path, artifacts: Path) -> None:
    """Fuzz target ``name`` in this process (libFuzzer exits it when done)."""
    import atheris

    sys.path.insert(0, str(HERE))
    with atheris.instrument_imports(include=list(PACKAGES)):
        import targets

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


def fuzz(name: str, seconds: int) -> list[Path]:
    """Fuzz ``name`` in a child process; returns the crash inputs it kept."""
    with tempfile.TemporaryDirectory(prefix=f"dchat-fuzz-{name}-") as tmp:
        corpus, artifacts = Path(tmp, "corpus"), Path(tmp, "artifacts")
        corpus.mkdir()
        artifacts.mkdir()
        command = [sys.executable, __file__, "--child", name, "--seconds", str(seconds)]
        command += ["--corpus", str(corpus), "--artifacts", str(artifacts)]
        started = time.monotonic()
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=seconds * 3 + 120,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        stats = [line for line in done.stderr.splitlines() if line.startswith("stat::")]
        runs = next((line.split()[-1] for line in stats if "number_of_executed_units" in line), "?")
        took = time.monotonic() - started
        print(f"{name}: {runs} inputs in {took:.0f} s, exit {done.returncode}", flush=True)
        kept = []
        for artifact in sorted(artifacts.iterdir()):
            data = artifact.read_bytes()
            path = REGRESSIONS / name / hashlib.sha256(data).hexdigest()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            kept.append(path)
        if done.returncode != 0 or kept:
            print(done.stderr[-6000:], file=sys.stderr)
            if not kept:
                kept.append(Path(f"<{name} exited {done.returncode} without an artifact>"))
        return kept


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", help="target names (default: all)")
    parser.add_argument("--seconds", type=int, default=10, help="seconds per target")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--artifacts", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.seconds, args.corpus, args.artifacts)
        return 0
    sys.path.insert(0, str(HERE))
    from targets import TARGETS

    names = args.targets or list(TARGETS)
    unknown = sorted(set(names) - set(TARGETS))
    if unknown:
        parser.error(f"unknown targets {unknown}; known: {sorted(TARGETS)}")
    crashes = [path for name in names for path in fuzz(name, args.seconds)]
    for path in crashes:
        print(f"crash kept: {path}", file=sys.stderr)
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
