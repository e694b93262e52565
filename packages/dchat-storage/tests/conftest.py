"""Shared fixtures: a fresh database in ``tmp_path``, and a real PostgreSQL server.

The server comes from ``DCHAT_TEST_POSTGRES_URL`` or is started for the session
(see :mod:`dchat_storage.testing`); tests that need it are skipped, with the
reason, only when neither is possible. With the variable set (as in CI) a
server that cannot be reached is an error, not a skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from dchat_storage import Database, open_database
from dchat_storage.testing import PostgresUnavailableError, postgres_database, postgres_server


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "node" / "dchat.sqlite3"


@pytest.fixture
def db(db_path: Path) -> Iterator[Database]:
    database = open_database(db_path)
    try:
        yield database
    finally:
        database.close()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    server = postgres_server()
    try:
        url = server.__enter__()
    except PostgresUnavailableError as exc:
        pytest.skip(f"no PostgreSQL server: {exc}")
    try:
        yield url
    finally:
        server.__exit__(None, None, None)


@pytest.fixture(scope="session")
def pg_template(pg_server: str) -> Iterator[str]:
    """A database migrated to head, copied for each test (faster than migrating each)."""
    with postgres_database(pg_server) as url:
        open_database(url).close()
        name = make_url(url).database
        assert name is not None
        yield name


@pytest.fixture
def pg_url(pg_server: str, pg_template: str) -> Iterator[str]:
    with postgres_database(pg_server, template=pg_template) as url:
        yield url


@pytest.fixture
def pg_empty_url(pg_server: str) -> Iterator[str]:
    with postgres_database(pg_server) as url:
        yield url
