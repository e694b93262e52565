"""The conformance suite: every test here runs on each backend.

``sqlite`` (clear), ``sqlite-sealed`` (at-rest encryption) and ``postgresql``
(a real server). The repositories must behave identically on all three.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dchat_storage import Database, open_database
from dchat_storage.lowlevel import StorageKey

BACKENDS = ("sqlite", "sqlite-sealed", "postgresql")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def target(backend: str, db_path: Path, request: pytest.FixtureRequest) -> str | Path:
    if backend == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    return db_path


@pytest.fixture
def key(backend: str) -> StorageKey | None:
    return StorageKey.generate() if backend == "sqlite-sealed" else None


@pytest.fixture
def reopen(target: str | Path, key: StorageKey | None) -> Iterator[Callable[[], Database]]:
    """Open the test's database again (a new handle; closed at teardown)."""
    opened: list[Database] = []

    def again() -> Database:
        opened.append(open_database(target, key=key))
        return opened[-1]

    yield again
    for database in opened:
        database.close()


@pytest.fixture
def db(target: str | Path, key: StorageKey | None) -> Iterator[Database]:
    database = open_database(target, key=key)
    try:
        yield database
    finally:
        database.close()
