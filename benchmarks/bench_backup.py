"""Backup throughput, deduplication and restore: dchat's repository vs tar + zstd.

One synthetic data directory (part incompressible random bytes, part
compressible bytes with 4 bits of entropy per byte, and a SQLite database in WAL
mode) is backed up in the same run by:

* ``dchat``: :class:`dchat_storage.backup.Repository` on a
  :class:`~dchat_storage.backup.LocalDirectoryDestination` (content-defined
  chunks, zstd level 3, ChaCha20-Poly1305, one fsync per blob), default chunk
  sizes (256 KiB / 1 MiB / 4 MiB);
* ``tar+zstd``: :mod:`tarfile` streamed through ``zstandard`` level 3 into one
  file, fsynced at the end. No encryption, no deduplication, and it reads the
  database file raw (not a consistent copy).

Measured: backup MB/s (source bytes / wall time), stored size, the bytes a
second backup of the unchanged directory adds, the bytes added after a 100-byte
edit, and restore MB/s. The results replace this script's section of
``docs/benchmarks.md``.

Usage::

    uv run python benchmarks/bench_backup.py [--size-mib N] [--no-write]
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import zstandard

from _common import arg_parser, markers, publish, run_lines
from dchat_crypto import KdfParams
from dchat_storage.backup import LocalDirectoryDestination, Repository

NAME = "bench_backup"
START, END = markers(NAME)
MIB = 1 << 20
# 16 letters: 4 bits of entropy per byte, so zstd roughly halves it, and random
# content still never repeats (no free deduplication).
_ALPHABET = bytes(b"etaoinshrdlucmfw"[i % 16] for i in range(256))


class CountingDestination(LocalDirectoryDestination):
    """Counts bytes put, so dedup is measured at the destination itself."""

    written = 0

    def put(self, name: str, data: bytes) -> None:
        self.written += len(data)
        super().put(name, data)


def make_data_dir(root: Path, size: int) -> int:
    """Fill ``root``: 50 % random, 37.5 % compressible, 12.5 % SQLite. Returns bytes."""
    root.mkdir(parents=True)
    (root / "attachments").mkdir()
    random_part, text_part = size // 2, size * 3 // 8
    for i in range(4):
        (root / "attachments" / f"media-{i}.bin").write_bytes(os.urandom(random_part // 4))
    for i in range(2):
        data = os.urandom(text_part // 2).translate(_ALPHABET)
        (root / f"archive-{i}.log").write_bytes(data)
    db = sqlite3.connect(root / "node.db")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE messages (id INTEGER PRIMARY KEY, body BLOB)")
    rows = (size - random_part - text_part) // 1100
    body = (os.urandom(1024).translate(_ALPHABET) for _ in range(rows))
    db.executemany("INSERT INTO messages (body) VALUES (?)", ((b,) for b in body))
    db.commit()
    db.close()
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def edit(root: Path) -> None:
    """Overwrite 100 bytes in the middle of one file."""
    path = root / "attachments" / "media-1.bin"
    with path.open("r+b") as handle:
        handle.seek(path.stat().st_size // 2)
        handle.write(os.urandom(100))


def tree_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


@dataclass
class Row:
    name: str
    backup_s: float
    stored: int
    second: int
    after_edit: int
    restore_s: float


def timed(action: object) -> float:
    start = time.perf_counter()
    action()  # type: ignore[operator]
    return time.perf_counter() - start


def run_dchat(data: Path, work: Path) -> Row:
    dest = CountingDestination(work / "repo")
    repo = Repository.init(dest, b"bench passphrase", kdf=KdfParams.DEFAULT)
    dest.written = 0
    backup_s = timed(lambda: repo.create(data))
    first, dest.written = dest.written, 0
    repo.create(data)
    second, dest.written = dest.written, 0
    edit(data)
    repo.create(data)
    after_edit = dest.written
    restore_s = timed(lambda: repo.restore("latest", work / "restored"))
    assert repo.verify().ok
    shutil.rmtree(work / "restored")
    return Row("dchat", backup_s, first, second, after_edit, restore_s)


def tar_zstd(data: Path, out: Path) -> int:
    with out.open("wb") as raw:
        packer = zstandard.ZstdCompressor(level=3)
        with (
            packer.stream_writer(raw, closefd=False) as packed,
            tarfile.open(fileobj=packed, mode="w|") as tar,
        ):
            tar.add(data, arcname=".")
        raw.flush()
        os.fsync(raw.fileno())
    return out.stat().st_size


def untar_zstd(archive: Path, target: Path) -> None:
    with (
        archive.open("rb") as raw,
        zstandard.ZstdDecompressor().stream_reader(raw) as unpacked,
        tarfile.open(fileobj=unpacked, mode="r|") as tar,
    ):
        tar.extractall(target, filter="data")


def run_tar(data: Path, work: Path) -> Row:
    sizes: list[int] = []
    backup_s = timed(lambda: sizes.append(tar_zstd(data, work / "one.tar.zst")))
    second = tar_zstd(data, work / "two.tar.zst")  # a second archive is a full copy
    after_edit = tar_zstd(data, work / "three.tar.zst")
    restore_s = timed(lambda: untar_zstd(work / "one.tar.zst", work / "untarred"))
    return Row("tar+zstd", backup_s, sizes[0], second, after_edit, restore_s)


def section(rows: list[Row], size: int, argv: list[str]) -> str:
    mb = size / 1e6
    lines = [
        f"| {r.name} | {mb / r.backup_s:.1f} | {r.stored / MIB:.1f} | "
        f"{r.second / 1024:,.1f} KiB ({r.second / r.stored:.2e}) | "
        f"{r.after_edit / 1024:,.1f} KiB | {mb / r.restore_s:.1f} |"
        for r in rows
    ]
    ours, base = rows
    return "\n".join(
        [
            START,
            "## Backups (dchat_storage.backup vs tar + zstd)",
            "",
            *run_lines(NAME, argv),
            f"- Data: {size / MIB:.1f} MiB in one directory: 50 % random bytes (4 files), "
            "37.5 % compressible bytes (4 bits of entropy per byte, 2 files), the rest a "
            "SQLite database in WAL mode. Source and repository on the same local disk. "
            "One run of each step.",
            "- dchat: default chunk sizes 256 KiB / 1 MiB / 4 MiB, zstd level 3, "
            "ChaCha20-Poly1305, fsync per blob; the database copied with SQLite's backup "
            "API. Restore authenticates every chunk and checks whole-file hashes. "
            "tar+zstd: `tarfile` through `zstandard` level 3, fsync at the end; no "
            "encryption, no deduplication, raw database file.",
            "- 'second backup' is what a backup of the unchanged directory adds (ratio to "
            "the first in brackets); 'after edit' after overwriting 100 bytes of one file.",
            "",
            "| tool | backup MB/s | stored (MiB) | second backup adds | after edit adds "
            "| restore MB/s |",
            "|---|---:|---:|---:|---:|---:|",
            *lines,
            "",
            f"dchat / tar+zstd: backup speed {base.backup_s / ours.backup_s:.2f}x, "
            f"restore speed {base.restore_s / ours.restore_s:.2f}x, stored size "
            f"{ours.stored / base.stored:.2f}x; dedup ratio of an unchanged second "
            f"snapshot {ours.second / ours.stored:.2e} (bytes it wrote / bytes the first wrote).",
            END,
        ]
    )


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = arg_parser(__doc__)
    parser.add_argument("--size-mib", type=int, default=96, help="size of the data directory")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-backup-") as tmp:
        work = Path(tmp)
        size = make_data_dir(work / "data", args.size_mib * MIB)
        tar_work, dchat_work = work / "tar", work / "dchat"
        tar_work.mkdir()
        dchat_work.mkdir()
        # tar first: dchat's run edits the directory.
        rows = [run_tar(work / "data", tar_work)]
        rows.insert(0, run_dchat(work / "data", dchat_work))
    text = section(rows, size, argv)
    publish(NAME, text, args)


if __name__ == "__main__":
    main()
