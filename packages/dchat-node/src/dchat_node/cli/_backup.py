"""``dchat-node backup``: encrypted, deduplicated backups of a node's data directory.

The repository passphrase comes from ``DCHAT_BACKUP_PASSPHRASE`` or
``--passphrase-file`` (never a flag value, which other users could read from the
process list). ``create`` is safe while the node runs: databases are copied
with SQLite's online backup API. Errors print one line and exit with status 1.

A node whose database is on PostgreSQL (``database_url``) keeps only its keys
and config in the data directory, so a snapshot of it is not a backup of the
node: ``create`` refuses (``ConfigError``) unless ``--without-database`` says
the database is backed up on the server's side (``pg_dump``, see
docs/operations.md).
"""

from __future__ import annotations

import datetime
import os
import time
import tomllib
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from dchat_storage.backup import (
    BackupStatus,
    LocalDirectoryDestination,
    Repository,
    write_backup_status,
)

from .._errors import ConfigError
from ._common import err_console, read_passphrase
from ._common import fail as _fail
from ._common import guard as _guard

if TYPE_CHECKING:
    from collections.abc import Iterator

    from dchat_storage.backup import Progress as ProgressCallback

__all__ = ("backup_app",)

T = TypeVar("T")
_DEFAULT_DIR = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "dchat"
_out = Console()

backup_app = typer.Typer(
    help="Encrypted, deduplicated backups of a node's data directory.", no_args_is_help=True
)

Repo = Annotated[
    Path, typer.Option("--repo", envvar="DCHAT_BACKUP_REPO", help="The backup repository.")
]
DataDir = Annotated[
    Path, typer.Option("--data-dir", envvar="DCHAT_DATA_DIR", help="The node's data directory.")
]
PassFile = Annotated[
    Path | None,
    typer.Option(help="File holding the repository passphrase (else DCHAT_BACKUP_PASSPHRASE)."),
]


def _passphrase(passphrase_file: Path | None) -> bytes:
    return read_passphrase(passphrase_file, "DCHAT_BACKUP_PASSPHRASE", "open the repository")


def _open(repo: Path, passphrase_file: Path | None) -> Repository:
    secret = _passphrase(passphrase_file)
    return _guard(lambda: Repository.open(LocalDirectoryDestination(repo), secret))


@contextmanager
def _progress(what: str, *, in_bytes: bool = True) -> Iterator[ProgressCallback]:
    """A rich progress bar on stderr, fed by a library progress callback."""
    counter = DownloadColumn() if in_bytes else TextColumn("{task.completed}/{task.total}")
    columns = (TextColumn(what), BarColumn(), counter, TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(what, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _when(seconds: float) -> str:
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


@backup_app.command("init")
def init(repo: Repo, passphrase_file: PassFile = None) -> None:
    """Create a backup repository at REPO, locked by the passphrase."""
    secret = _passphrase(passphrase_file)
    _guard(lambda: Repository.init(LocalDirectoryDestination(repo), secret))
    _out.print(f"created backup repository {repo}", highlight=False)


def database_outside(data_dir: Path) -> bool:
    """Whether the node of ``data_dir`` keeps its database elsewhere (``database_url`` set).

    Read leniently, for ``dchat-node backup``: ``DCHAT_DATABASE_URL``, or the
    key in ``data_dir/dchat.toml``; an unreadable file counts as not set
    (backing up a directory must not depend on its config being valid).
    """
    if os.environ.get("DCHAT_DATABASE_URL"):
        return True
    try:
        table = tomllib.loads((data_dir / "dchat.toml").read_text()).get("node", {})
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return False
    return isinstance(table, dict) and bool(table.get("database_url"))


def check_database_inside(data_dir: Path) -> None:
    """Refuse to back up a data directory whose node database is on PostgreSQL.

    Raises:
        ConfigError: ``database_url`` is set for this node.
    """
    if database_outside(data_dir):
        raise ConfigError(
            f"the database of the node in {data_dir} is on PostgreSQL (database_url), not in the "
            "data directory: back it up with pg_dump (docs/operations.md) and pass "
            "--without-database to back up the keys and config alone"
        )


@backup_app.command("create")
def create(
    repo: Repo,
    data_dir: DataDir = _DEFAULT_DIR,
    passphrase_file: PassFile = None,
    without_database: Annotated[
        bool,
        typer.Option(
            "--without-database",
            envvar="DCHAT_BACKUP_WITHOUT_DATABASE",
            help="The node's database is on PostgreSQL and backed up there: copy the rest.",
        ),
    ] = False,
) -> None:
    """Take a snapshot of the data directory (safe while the node runs)."""
    if not without_database:
        _guard(lambda: check_database_inside(data_dir))
    repository = _open(repo, passphrase_file)
    with _progress("backing up") as progress:
        result = _guard(lambda: repository.create(data_dir, exclude=[repo], progress=progress))
    snap = result.snapshot
    _out.print(
        f"snapshot {snap.short_id}: {snap.files} files, {snap.size:,} bytes; "
        f"{result.new_chunks} new of {result.chunks} chunks, "
        f"{result.bytes_written:,} bytes written",
        highlight=False,
    )


@backup_app.command("list")
def list_snapshots(repo: Repo, passphrase_file: PassFile = None) -> None:
    """List snapshots, oldest first."""
    repository = _open(repo, passphrase_file)
    table = Table("id", "time", "files", "size", "source")
    for snap in _guard(repository.snapshots):
        table.add_row(
            snap.short_id, _when(snap.time), str(snap.files), f"{snap.size:,}", snap.source
        )
    _out.print(table)


RecordIn = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="DCHAT_DATA_DIR",
        help="On success, record the newest verified snapshot's time in this node data "
        "directory (the node reports it as dchat_backup_last_success_timestamp_seconds).",
    ),
]


@backup_app.command("verify")
def verify(repo: Repo, passphrase_file: PassFile = None, data_dir: RecordIn = None) -> None:
    """Read and authenticate every blob; exit 1 if anything is damaged or missing."""
    repository = _open(repo, passphrase_file)
    started = time.time()
    with _progress("verifying", in_bytes=False) as progress:
        report = _guard(lambda: repository.verify(progress=progress))
    for problem in report.problems:
        err_console.print(str(problem), highlight=False, soft_wrap=True)
    if not report.ok:
        damaged = ", ".join(sorted(s[:8] for s in report.damaged_snapshots)) or "none"
        count = len(report.problems)
        raise _fail(f"{count} problem{'s' * (count != 1)}; damaged snapshots: {damaged}")
    if data_dir is not None:
        snapshots = _guard(repository.snapshots)
        if snapshots:  # an empty repository proves no backup
            status = BackupStatus(snapshots[-1].time, started, len(snapshots))
            _guard(lambda: write_backup_status(data_dir, status))
    _out.print(
        f"ok: {report.snapshots} snapshots, {report.chunks} chunks, "
        f"{report.bytes_read:,} bytes authenticated",
        highlight=False,
    )


@backup_app.command("restore")
def restore(
    snapshot: Annotated[str, typer.Argument(help="Snapshot id, unique prefix, or 'latest'.")],
    target: Annotated[Path, typer.Option(help="An empty or missing directory.")],
    repo: Repo,
    passphrase_file: PassFile = None,
) -> None:
    """Restore SNAPSHOT into an empty directory, checking every file's hash."""
    repository = _open(repo, passphrase_file)
    with _progress("restoring") as progress:
        snap = _guard(lambda: repository.restore(snapshot, target, progress=progress))
    _out.print(f"restored snapshot {snap.short_id} into {target}", highlight=False)


@backup_app.command("prune")
def prune(
    repo: Repo,
    keep_last: Annotated[int, typer.Option(min=1, help="How many newest snapshots to keep.")],
    passphrase_file: PassFile = None,
) -> None:
    """Forget all but the newest snapshots and delete chunks nothing references."""
    repository = _open(repo, passphrase_file)
    result = _guard(lambda: repository.prune(keep_last=keep_last))
    _out.print(
        f"removed {len(result.removed_snapshots)} snapshots and {result.removed_chunks} "
        f"chunks; kept {len(result.kept_snapshots)} snapshots",
        highlight=False,
    )
