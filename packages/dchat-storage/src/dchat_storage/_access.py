"""Transactions shared by the repositories: many readers, one writer.

Theory of operation: every public call runs inside :meth:`Access.read` or
:meth:`Access.write`. Writers also hold a process-wide :class:`threading.Lock`,
so at most one write transaction exists per :class:`Database` and threads never
fight over SQLite's write lock (which would surface as "database is locked").
Readers take no lock: in WAL mode they see the last committed snapshot while a
writer works. A counter of calls in flight lets :meth:`Access.close` wait for
them, so no pooled connection is still checked out when the engine is disposed.

Transactions nest per thread: inside :meth:`Access.transaction` (or any write),
a further write runs in a SAVEPOINT of the same transaction and a read sees its
uncommitted rows, so several repository calls commit together or not at all
(the messaging engine stores a message, its outbox entry and the session state
it produced in one commit).

A repository write whose failure ends the caller's transaction anyway (nearly
every one) may ask for no savepoint of its own (``write(..., savepoint=False)``),
saving two round trips. If it raises, the enclosing level is *doomed*: should
a caller catch the error and carry on, that level refuses further reads and
writes and to commit (:class:`TransactionDoomedError`) and is rolled back, so half a write is never
kept, nor a transaction PostgreSQL has already aborted committed. Savepoints
are plain ``SAVEPOINT`` statements issued here: SQLAlchemy's nested
transactions cost several times more per level, and each engine send opens two.

A savepoint level nested in another savepoint level in which nothing was
written yet *shares* that level's savepoint instead of opening its own:
rolling back to it undoes the inner level's writes and nothing else, since
the outer one had none. A level has written once a repository write ran in
it (a write is assumed to run statements; a read never does) or a level that
had was released into it; :meth:`Database.transaction` levels only group
calls (``write(..., group=True)``) and start clean. So a grouped call, the
user agent's transaction around a send and the engine's inside it take one
SAVEPOINT and one RELEASE between them instead of three of each. The outermost
level has no savepoint to share: its direct children always open their own.

A write that only replaces a value by key (a setting) may be *deferred*
(:meth:`Access.defer`): inside a write transaction it is held by the open level
and written once, just before the outermost commit, with the last value given
for its key; reads of the same thread see it (:meth:`Access.deferred`). A
savepoint that rolls back drops the values deferred in it; one that is released
hands them to the enclosing level. The engine replaces the same few state values
(a session, a conversation's order) once per message, so a commit group of
many messages writes and seals each of them once instead of once per message.

The :attr:`Access.sealer` seals payloads and computes blind indexes; it starts
in clear mode and is replaced once the database is unlocked (``_keyring``).
"""

from __future__ import annotations

import functools
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import literal_column
from sqlalchemy.dialects import postgresql, sqlite

from ._engine import WRITE_OPTION, translate_errors
from ._errors import DatabaseClosedError, InvalidArgumentError, TransactionDoomedError
from ._prepared import Prepared
from ._sealing import Sealer

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Iterator

    from sqlalchemy import Connection, Engine

    from ._schema import Base

__all__ = ("Access", "check_limit", "insert_ignore")

_DOOMED = "a write failed inside this transaction and the error was caught; nothing was kept"


class _Level:
    """One open level of a thread's write transaction: the outermost or a savepoint.

    ``savepoint`` is the depth whose SAVEPOINT undoes the level (0: the
    outermost, none); ``wrote`` says whether a statement may have run in it
    (directly, or in a level released into it).
    """

    __slots__ = ("deferred", "doomed", "savepoint", "undos", "wrote")

    def __init__(self, savepoint: int = 0, *, wrote: bool = False) -> None:
        self.savepoint = savepoint
        self.wrote = wrote
        self.doomed = False
        self.undos: list[Callable[[], object]] = []
        self.deferred: dict[Hashable, tuple[object, Callable[[Connection, object], object]]] = {}

    def undo(self) -> None:
        """The level was rolled back: run its undo callbacks, newest first."""
        undos, self.undos = self.undos, []
        for undo in reversed(undos):
            undo()


def _check_alive(levels: list[_Level]) -> None:
    for level in levels:  # a plain loop: this runs for every read and write in a transaction
        if level.doomed:
            raise TransactionDoomedError(_DOOMED)


@functools.cache
def _savepoint_statements(depth: int) -> tuple[Prepared, Prepared, Prepared]:
    """SAVEPOINT, RELEASE and ROLLBACK TO for the savepoint at nesting ``depth``."""
    name = f"dchat_{depth}"
    return (
        Prepared(f"SAVEPOINT {name}"),
        Prepared(f"RELEASE SAVEPOINT {name}"),
        Prepared(f"ROLLBACK TO SAVEPOINT {name}"),
    )


class Access:
    """Hands out read and write transactions on one engine; thread-safe."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.sealer: Sealer = Sealer()
        self._write_lock = threading.Lock()
        self._state = threading.Condition()
        self._in_flight = 0
        self._closed = False
        self._current = threading.local()

    def _open_write(self) -> Connection | None:
        conn: Connection | None = getattr(self._current, "conn", None)
        return conn

    @contextmanager
    def read(self, what: str) -> Iterator[Connection]:
        """Run a read-only transaction on a consistent snapshot.

        Args:
            what: Description of the operation, for error messages.

        Yields:
            A connection inside a ``BEGIN`` transaction; rolled back at exit.
            Inside this thread's write transaction: that transaction's connection.
        """
        outer = self._open_write()
        if outer is not None:
            _check_alive(self._current.levels)
            with translate_errors(what):
                yield outer
            return
        with self._call(), translate_errors(what), self._engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(
        self, what: str, *, savepoint: bool = True, group: bool = False
    ) -> Iterator[Connection]:
        """Run a write transaction; it is committed (and fsynced) on normal exit.

        Args:
            what: Description of the operation, for error messages.
            savepoint: Nested in this thread's write transaction, run the block
                in a SAVEPOINT. With ``False`` it runs in the enclosing level,
                and if it raises, that level is doomed (see the module
                docstring): for writes no caller catches the errors of.
            group: The block runs other repository calls only, no statement of
                its own (``Database.transaction``): nested, it may share the
                enclosing level's savepoint (see the module docstring).

        Yields:
            A connection inside a ``BEGIN IMMEDIATE`` transaction. An exception
            from the block rolls it back and propagates. Nested in this thread's
            write transaction, the block runs in a SAVEPOINT: an exception rolls
            back only the block, and nothing is committed before the outermost exit.

        Raises:
            TransactionDoomedError: A write without a savepoint failed inside
                this level and the block went on and ended normally; nothing of
                the level is kept.
        """
        outer = self._open_write()
        if outer is not None:
            levels: list[_Level] = self._current.levels
            _check_alive(levels)
            if not savepoint:
                levels[-1].wrote = True
                try:
                    with translate_errors(what):
                        yield outer
                except BaseException:
                    levels[-1].doomed = True
                    raise
                return
            with translate_errors(what):
                yield from self._savepoint(outer, levels, wrote=not group)
            return
        with self._call(), self._write_lock, translate_errors(what):
            top = _Level()
            self._current.ends = []
            try:
                with (
                    self._engine.connect().execution_options(**{WRITE_OPTION: True}) as conn,
                    conn.begin() as transaction,
                ):
                    self._current.conn, self._current.levels = conn, [top]
                    try:
                        yield conn
                        if top.doomed:
                            transaction.rollback()
                            raise TransactionDoomedError(_DOOMED)
                        for value, flush in top.deferred.values():  # once per key, then commit
                            flush(conn, value)
                    finally:
                        self._current.conn = self._current.levels = None
            except BaseException:  # rolled back, or the commit failed
                top.undo()  # still under the write lock: no other writer saw the caches
                raise
            finally:
                ends, self._current.ends = self._current.ends, None
                for end in ends:
                    end()

    def _savepoint(
        self, conn: Connection, levels: list[_Level], *, wrote: bool
    ) -> Iterator[Connection]:
        # Straight to the driver: a savepoint opens around every grouped call and
        # many repository writes, and SQLAlchemy's execution path costs more than it.
        parent = levels[-1]
        # An enclosing savepoint level in which nothing was written yet is shared:
        # rolling back to its savepoint undoes this level's writes and nothing else.
        shared = parent.savepoint > 0 and not parent.wrote
        depth = parent.savepoint if shared else len(levels)
        begin, release, rollback = _savepoint_statements(depth)
        if not shared:
            begin.run(conn)
        level = _Level(depth, wrote=wrote)
        levels.append(level)
        try:
            yield conn
            if level.doomed:
                raise TransactionDoomedError(_DOOMED)
        except BaseException:
            levels.pop()
            try:
                rollback.run(conn)
                if not shared:
                    release.run(conn)
            finally:
                level.undo()
            raise
        levels.pop()
        if not shared:
            release.run(conn)
        parent.wrote = parent.wrote or level.wrote
        parent.undos += level.undos  # undone too if the enclosing level rolls back
        parent.deferred.update(level.deferred)  # newer values win

    def on_rollback(self, undo: Callable[[], object]) -> None:
        """Call ``undo`` if this thread's innermost open write level is rolled back.

        For state kept beside the database (a cache of decoded rows): ``undo``
        forgets what the level wrote there. It runs under the writer lock, once,
        when the level (or an enclosing one, or the commit) fails; never after a
        successful commit. Outside a write transaction there is nothing left to
        roll back, and ``undo`` is dropped.
        """
        levels: list[_Level] | None = getattr(self._current, "levels", None)
        if levels:
            levels[-1].undos.append(undo)

    def defer(
        self, key: Hashable, value: object, flush: Callable[[Connection, object], object]
    ) -> bool:
        """Hold a keyed write until this thread's outermost write transaction commits.

        ``flush(conn, value)`` runs once per ``key``, with the last value
        deferred for it, just before the commit (a failure rolls everything
        back). Returns False outside a write transaction (nothing is held:
        the caller writes at once).

        Raises:
            TransactionDoomedError: A write of the open level failed earlier.
        """
        levels: list[_Level] | None = getattr(self._current, "levels", None)
        if not levels:
            return False
        _check_alive(levels)
        levels[-1].deferred[key] = (value, flush)
        return True

    def deferred(self, key: Hashable) -> tuple[object] | None:
        """The value deferred for ``key`` in this thread's transaction (as a 1-tuple), or None."""
        levels: list[_Level] | None = getattr(self._current, "levels", None)
        if levels:
            for level in reversed(levels):
                held = level.deferred.get(key)
                if held is not None:
                    return (held[0],)
        return None

    def at_end(self, end: Callable[[], object]) -> None:
        """Call ``end`` once this thread's outermost write transaction is over.

        It runs whether the transaction committed or rolled back, after the
        commit (so a reader on another thread may already see the result) and
        still under the writer lock. For caches of committed rows: a write
        marks its rows unsettled until ``end``. Outside a write transaction
        ``end`` runs at once.
        """
        ends: list[Callable[[], object]] | None = getattr(self._current, "ends", None)
        if ends is None:
            end()
        else:
            ends.append(end)

    @contextmanager
    def raw(self, what: str) -> Iterator[Any]:
        """Hold the writer lock and a raw DB-API connection outside any transaction.

        For statements that cannot run in a transaction (SQLite ``VACUUM``).
        """
        with self._call(), self._write_lock, translate_errors(what):
            dbapi_connection = self._engine.raw_connection()
            try:
                yield dbapi_connection
            finally:
                dbapi_connection.close()

    @property
    def dialect(self) -> str:
        """The backend's dialect name: ``"sqlite"`` or ``"postgresql"``."""
        return self._engine.dialect.name

    def close(self) -> None:
        """Refuse new calls, wait for calls in flight, then close every connection."""
        with self._state:
            if self._closed:
                return
            self._closed = True
            self._state.wait_for(lambda: self._in_flight == 0)
        self._engine.dispose()

    @contextmanager
    def _call(self) -> Iterator[None]:
        with self._state:
            if self._closed:
                raise DatabaseClosedError("the database is closed")
            self._in_flight += 1
        try:
            yield
        finally:
            with self._state:
                self._in_flight -= 1
                self._state.notify_all()


def insert_ignore(conn: Connection, model: type[Base], values: dict[str, object]) -> bool:
    """Insert a row unless it would violate a unique key; say whether it was inserted.

    One statement (``INSERT ... ON CONFLICT DO NOTHING``) rather than a look-up
    followed by an insert, so it stays correct if several processes share a file.
    """
    if conn.dialect.name == "postgresql":
        # An explicit RETURNING: PostgreSQL's rowcount is unknown until rows are fetched,
        # and SQLAlchemy would otherwise consume its own implicit RETURNING row.
        pg = postgresql.insert(model).values(values).on_conflict_do_nothing()
        return conn.execute(pg.returning(literal_column("1"))).first() is not None
    lite = sqlite.insert(model).values(values).on_conflict_do_nothing()
    return conn.execute(lite).rowcount == 1


def check_limit(limit: int) -> None:
    """Reject a non-positive row limit.

    Raises:
        InvalidArgumentError: ``limit`` is below 1.
    """
    if limit < 1:
        raise InvalidArgumentError(f"limit must be at least 1, got {limit}")
