"""A fresh SQLite database in ``tmp_path`` (``db_path``, ``db``).

The PostgreSQL fixtures (``pg_server``, ``pg_template``, ``pg_url``,
``pg_empty_url``) come from :mod:`dchat_testing.pytest_plugin`, shared with
other packages' tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dchat_storage import Database, open_database


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
