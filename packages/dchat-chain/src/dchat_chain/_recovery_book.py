"""What a node remembers of its recovery tasks on the chat chain: states, errors, retries.

Theory of operation. :class:`RecoveryChainBook` is rebuilt from one stored
blob each round (the shell keeps it in its sealed settings) and holds, per
task id, the last state shown, whether the task is finished, the last error
and when to try again. The tasks themselves are not stored: the shell derives
them from the guardian and recovery agents' state each round, and
:meth:`RecoveryChainBook.due` forgets entries whose task is gone. A failure
(a chain that does not answer, a refused transaction) is kept with its code,
shown in the status, and retried after a doubling delay (1 s to 60 s); it is
never dropped. A task whose transactions went through is looked at again at
once, so the next verified read confirms it.

Stored map: task id -> ``[role, state, detail, done, tries, next ms, error]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from dchat_core import DecodeError, DecodeLimits, canonical_decode, canonical_encode

from ._errors import ChainArgumentError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._recovery_chain import ChainStep, RecoveryTask

__all__ = ("RecoveryChainBook",)

_LIMITS: Final = DecodeLimits(max_size=1 << 18, max_depth=3, max_items=1 << 12)
_MAX_BACKOFF_MS: Final = 60_000


def _entry_ok(entry: Any) -> bool:
    return (
        isinstance(entry, list)
        and len(entry) == 7
        and all(isinstance(entry[i], str) for i in (0, 1, 2, 6))
        and isinstance(entry[3], bool)
        and all(isinstance(entry[i], int) and not isinstance(entry[i], bool) for i in (4, 5))
    )


class RecoveryChainBook:
    """States, errors and retry times of a node's recovery tasks (see the module docstring).

    Args:
        stored: The blob :meth:`to_bytes` wrote (None: nothing yet).

    Raises:
        ChainArgumentError: ``stored`` is not such a blob.
    """

    __slots__ = ("_entries", "changed")

    def __init__(self, stored: bytes | None = None) -> None:
        self.changed = False
        try:
            entries = {} if stored is None else canonical_decode(stored, _LIMITS)
        except DecodeError:
            entries = None
        if not isinstance(entries, dict) or not all(
            isinstance(k, str) and _entry_ok(v) for k, v in entries.items()
        ):
            raise ChainArgumentError("the recovery chain book is corrupt")
        self._entries: dict[str, list[Any]] = entries

    def to_bytes(self) -> bytes:
        """The blob to store."""
        return canonical_encode(self._entries)

    def due(self, tasks: Sequence[RecoveryTask], now_ms: int) -> list[RecoveryTask]:
        """The unfinished ``tasks`` whose retry time has come; forgets tasks no longer given."""
        ids = {task.task_id for task in tasks}
        for gone in [key for key in self._entries if key not in ids]:
            del self._entries[gone]
            self.changed = True
        due = []
        for task in tasks:
            entry = self._entries.get(task.task_id)
            if entry is None or (not entry[3] and entry[5] <= now_ms):
                due.append(task)
        return due

    def stepped(self, task: RecoveryTask, step: ChainStep, now_ms: int) -> None:
        """Record the step planned for ``task`` (its transactions, if any, went through)."""
        wait_ms = 0 if step.txs else round(step.wait * 1000)
        entry = [task.role, step.state, step.detail, step.done, 0, now_ms + wait_ms, ""]
        self._put(task, entry)

    def failed(self, task: RecoveryTask, code: str, message: str, now_ms: int) -> None:
        """Record a failed attempt (kept, shown and retried after a doubling delay)."""
        old = self._entries.get(task.task_id)
        state, detail, tries = ("pending", "", 0) if old is None else (old[1], old[2], old[4])
        delay = min(1000 << min(tries, 16), _MAX_BACKOFF_MS)
        error = f"{code}: {message}"[:300]
        self._put(task, [task.role, state, detail, False, tries + 1, now_ms + delay, error])

    def _put(self, task: RecoveryTask, entry: list[Any]) -> None:
        if self._entries.get(task.task_id) != entry:
            self._entries[task.task_id] = entry
            self.changed = True

    def view(self, task: RecoveryTask) -> dict[str, Any]:
        """Where ``task`` stands, as a node's API shows it."""
        entry = self._entries.get(task.task_id)
        if entry is None:
            return {"state": "pending", "done": False}
        _role, state, detail, done, tries, next_ms, error = entry
        view: dict[str, Any] = {"state": state, "done": done}
        if detail:
            view["detail"] = detail
        if error:
            view.update(error=error, failures=tries)
        if not done:
            view["next_attempt"] = next_ms / 1000
        return view
