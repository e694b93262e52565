"""Programmatic Alembic migrations.

The Alembic script directory ships inside the package (``migrations/``), so an
installed wheel can migrate its database without an ``alembic.ini`` or a
working directory: the :class:`~alembic.config.Config` is built in code and the
caller's connection is handed to ``env.py`` through ``Config.attributes``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError

from ._errors import StorageUnavailableError

if TYPE_CHECKING:
    from sqlalchemy import Connection

__all__ = ("SCRIPT_LOCATION", "alembic_config", "current_revision", "head_revision", "upgrade")

SCRIPT_LOCATION = Path(__file__).resolve().parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    """Build an Alembic configuration for the packaged migrations.

    Args:
        connection: If given, ``env.py`` runs the migrations on it (inside its
            current transaction) instead of opening a connection of its own.

    Returns:
        A configuration usable with :mod:`alembic.command`.
    """
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """Return the newest revision id the packaged migrations know."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "packaged migrations have no revisions"
    return head


def current_revision(connection: Connection) -> str | None:
    """Return the revision the database at ``connection`` is at (None if empty)."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Upgrade the database at ``connection`` to ``revision``.

    Runs inside the connection's current transaction: the caller commits, so a
    failed migration leaves no half-migrated schema behind.

    Raises:
        StorageUnavailableError: The database is at a revision these migrations
            do not know, typically because a newer release wrote it.
    """
    current = current_revision(connection)
    script = ScriptDirectory.from_config(alembic_config())
    if current is not None and _unknown(script, current):
        raise StorageUnavailableError(
            f"database schema revision {current!r} is unknown to this dchat-storage "
            f"(newest known: {script.get_current_head()!r}); was it written by a newer release?"
        )
    command.upgrade(alembic_config(connection), revision)


def _unknown(script: ScriptDirectory, revision: str) -> bool:
    try:
        return script.get_revision(revision) is None
    except CommandError:
        return True
