"""Alembic environment for dchat-storage.

dchat-storage runs migrations itself at open (see ``_migrate.py``) and passes
its connection in ``config.attributes["connection"]``. Without one (a developer
running ``alembic`` by hand) the URL comes from ``sqlalchemy.url``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from dchat_storage._schema import metadata


def _run(connection: Connection) -> None:
    # transactional_ddl: SQLite DDL is transactional once the driver stops
    # managing transactions (see _engine.py), so a migration is all-or-nothing.
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("set sqlalchemy.url or pass a connection in config.attributes")
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


_run_online()
