"""Conversation state: named states, and storages of (state, data) per bot, chat and user.

A conversation is a state machine the bot's handlers drive: a handler reads the
current state of the person it answers (``await ctx.state.get()``), moves it
(``await ctx.state.set(Form.age)``) and keeps answers so far in the state's data
(a JSON object). Handlers pick a state with the :class:`~dchat_bots.InState`
filter, so "what the bot expects next" lives in the storage, not in the
handler's memory, and survives a restart with :class:`SQLiteStorage`.

A storage keys everything by :class:`StorageKey` (the bot's user id, the chat,
the user): two bots sharing one database, or one person in two chats, never see
each other's state. Data is checked to be JSON when it is written (a value
that is not raises :class:`~dchat_bots.StateDataError`) in both storages, so a
bot tested on :class:`MemoryStorage` behaves the same on SQLite.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import anyio.to_thread

from ._errors import StateDataError, StateStorageError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = (
    "FSMContext",
    "MemoryStorage",
    "SQLiteStorage",
    "State",
    "StateStorage",
    "StatesGroup",
    "StorageKey",
)


class State:
    """A named state. In a :class:`StatesGroup` the name is ``Group:attribute``."""

    def __init__(self, name: str | None = None) -> None:
        self._name = name

    def __set_name__(self, owner: type, attribute: str) -> None:
        if self._name is None:
            self._name = f"{owner.__name__}:{attribute}"

    @property
    def name(self) -> str:
        if self._name is None:
            raise TypeError("a State() outside a StatesGroup needs a name")
        return self._name

    def __repr__(self) -> str:
        return f"State({self._name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, State) and other._name == self._name

    def __hash__(self) -> int:
        return hash(self._name)


class StatesGroup:
    """States of one conversation, as class attributes: ``name = State()``."""

    @classmethod
    def states(cls) -> tuple[State, ...]:
        return tuple(v for k, v in vars(cls).items() if isinstance(v, State))


class StorageKey(NamedTuple):
    """Whose state: the bot (its user id), the chat, the user."""

    bot_id: int
    chat_id: int
    user_id: int


class StateStorage(Protocol):
    """Where conversation states and data live."""

    async def get_state(self, key: StorageKey) -> str | None: ...
    async def set_state(self, key: StorageKey, state: str | None) -> None: ...
    async def get_data(self, key: StorageKey) -> dict[str, Any]: ...
    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None: ...
    async def aclose(self) -> None: ...


def _encode(data: Mapping[str, Any]) -> str:
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise StateDataError("state data must be a dict with string keys")
    try:
        return json.dumps(data, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise StateDataError(f"state data must be JSON values: {exc}") from None


def _decode(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise StateStorageError("stored state data is not a JSON object")
    return data


def _state_name(state: State | str | None) -> str | None:
    if state is None or isinstance(state, str):
        return state
    return state.name


class MemoryStorage:
    """States in this process's memory (gone when it stops): for tests and throwaway bots."""

    def __init__(self) -> None:
        self._states: dict[StorageKey, str] = {}
        self._data: dict[StorageKey, str] = {}

    async def get_state(self, key: StorageKey) -> str | None:
        return self._states.get(key)

    async def set_state(self, key: StorageKey, state: str | None) -> None:
        if state is None:
            self._states.pop(key, None)
        else:
            self._states[key] = state

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        return _decode(self._data.get(key, "{}"))

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        encoded = _encode(data)
        if encoded == "{}":
            self._data.pop(key, None)
        else:
            self._data[key] = encoded

    async def aclose(self) -> None:
        """Nothing to close."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS dchat_bots_state (
    bot_id INTEGER NOT NULL,
    chat_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    state TEXT,
    data TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (bot_id, chat_id, user_id)
)
"""
_SELECT = "SELECT state, data FROM dchat_bots_state WHERE bot_id=? AND chat_id=? AND user_id=?"
_SET_STATE = (
    "INSERT INTO dchat_bots_state (bot_id, chat_id, user_id, state) VALUES (?, ?, ?, ?) "
    "ON CONFLICT DO UPDATE SET state=excluded.state"
)
_SET_DATA = (
    "INSERT INTO dchat_bots_state (bot_id, chat_id, user_id, data) VALUES (?, ?, ?, ?) "
    "ON CONFLICT DO UPDATE SET data=excluded.data"
)
_DROP_EMPTY = (
    "DELETE FROM dchat_bots_state WHERE bot_id=? AND chat_id=? AND user_id=? "
    "AND state IS NULL AND data='{}'"
)


class SQLiteStorage:
    """States in a SQLite file (stdlib ``sqlite3``, WAL): they survive restarts.

    Each call runs in a worker thread (``anyio.to_thread``) on one connection
    behind a lock, so the event loop never waits on the disk. A row whose
    state is ``None`` and data empty is deleted. A new file is created readable
    by its owner only (mode 0600); the data is not encrypted (see
    docs/rationale.md, "The bot framework").

    Args:
        path: The database file (created with its table if missing).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            if not self.path.exists():  # the bot's conversations: for its own user only
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
            self._db = sqlite3.connect(self.path, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StateStorageError(f"cannot open the state database: {exc}") from None

    def _run(self, statements: tuple[tuple[str, tuple[object, ...]], ...]) -> list[Any]:
        """Run ``statements`` as one transaction; answers the last one's rows."""
        with self._lock:
            try:
                with self._db:
                    rows: list[Any] = []
                    for sql, args in statements:
                        rows = self._db.execute(sql, args).fetchall()
                    return rows
            except sqlite3.Error as exc:
                raise StateStorageError(f"state database: {exc}") from None

    async def _call(self, *statements: tuple[str, tuple[object, ...]]) -> list[Any]:
        run: Callable[[tuple[tuple[str, tuple[object, ...]], ...]], list[Any]] = self._run
        return await anyio.to_thread.run_sync(run, statements)

    async def _row(self, key: StorageKey) -> tuple[str | None, str]:
        rows = await self._call((_SELECT, tuple(key)))
        return (rows[0][0], rows[0][1]) if rows else (None, "{}")

    async def get_state(self, key: StorageKey) -> str | None:
        return (await self._row(key))[0]

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        return _decode((await self._row(key))[1])

    async def set_state(self, key: StorageKey, state: str | None) -> None:
        await self._call((_SET_STATE, (*key, state)), (_DROP_EMPTY, tuple(key)))

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        await self._call((_SET_DATA, (*key, _encode(data))), (_DROP_EMPTY, tuple(key)))

    async def aclose(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()


class FSMContext:
    """The state of the person a handler answers: one :class:`StorageKey` in a storage."""

    def __init__(self, storage: StateStorage, key: StorageKey) -> None:
        self.storage = storage
        self.key = key

    async def get(self) -> str | None:
        """The current state's name (``None``: no conversation going on)."""
        return await self.storage.get_state(self.key)

    async def set(self, state: State | str | None) -> None:
        """Move to ``state`` (``None`` leaves the conversation but keeps the data)."""
        await self.storage.set_state(self.key, _state_name(state))

    async def get_data(self) -> dict[str, Any]:
        return await self.storage.get_data(self.key)

    async def set_data(self, data: Mapping[str, Any]) -> None:
        await self.storage.set_data(self.key, data)

    async def update_data(self, **values: Any) -> dict[str, Any]:
        """Merge ``values`` into the data; answers the new data."""
        data = await self.get_data() | values
        await self.set_data(data)
        return data

    async def clear(self) -> None:
        """End the conversation: no state, no data."""
        await self.storage.set_state(self.key, None)
        await self.storage.set_data(self.key, {})
