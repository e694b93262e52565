"""What the agent shells share: stored state, errors, sending, contacts by name.

Every agent step in a shell has the same I/O around it: load the agent's
blobs from the settings table (``UserService.state_get``, sealed at rest;
:func:`load` decodes one, ``None`` if there is none yet), run one step with
``now``, then :func:`commit`: store the blobs the step changed and send the
:class:`~dchat_identity.lowlevel.Outgoing` items it returned
(:func:`queue_sealed` for the raw items a pairing session or the sync agent
addresses to a mailbox at each home relay). Maps are in the format of
:func:`dchat_identity.lowlevel.decode_map` (the guardian and recovery agents
and the burner service keep their state this way). :func:`state_errors`
turns the agents' :class:`RecoveryStateError` into the node's
:class:`NodeStateError` with the same code (``corrupt_state``,
``not_found``, ...), which the API maps to HTTP; :func:`check_main` keeps
burners out of guardian business. :func:`one_step_at_a_time` runs a shell's
steps under its ``_steps`` lock: a step loads state, changes it and stores it
back across awaits, and two at once (messages through two mailbox links, an
API call beside a message) would each start from the same state, the later
write undoing the earlier.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager
from typing import TYPE_CHECKING, Concatenate, ParamSpec, Protocol, TypeVar

from dchat_identity.lowlevel import (
    RecoveryStateError,
    UnexpectedRecoveryError,
    decode_map,
    encode_map,
)

from .._errors import NodeStateError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping

    import trio

    from dchat_core import MailboxId
    from dchat_identity import Identity
    from dchat_identity.lowlevel import EntryMap, Outgoing

    from ._service import UserService


__all__ = (
    "check_main",
    "commit",
    "load",
    "load_map",
    "one_step_at_a_time",
    "queue_sealed",
    "send_all",
    "state_errors",
    "store_map",
)

_T = TypeVar("_T")


async def load(user: UserService, key: str, decode: Callable[[bytes], _T]) -> _T | None:
    """The blob stored under ``key``, decoded (``None`` if nothing is stored there)."""
    stored = await user.state_get(key)
    return None if stored is None else decode(stored)


async def queue_sealed(user: UserService, items: Iterable[tuple[MailboxId, bytes]]) -> None:
    """Queue ``(mailbox, ciphertext)`` items at every home relay through the durable outbox."""
    queue, relays = user.agent.queue_sealed, user.home_relays
    await user.run(queue, relays, [(bytes(m), data) for m, data in items], user.now())
    user.wake_outbox()


def check_main(user: UserService, identity: Identity) -> None:
    """Refuse guardian and recovery messages to anyone but the main identity."""
    if identity.identity_id != user.identity.identity_id:
        raise UnexpectedRecoveryError("guardian messages go to the main identity")


async def send_all(user: UserService, outgoing: Iterable[Outgoing]) -> None:
    """Send the control payloads an agent returned."""
    for item in outgoing:
        await user.send_control(item.card, item.kind, item.data)


@contextmanager
def state_errors() -> Iterator[None]:
    """Re-raise an agent's :class:`RecoveryStateError` as a :class:`NodeStateError`."""
    try:
        yield
    except RecoveryStateError as exc:
        raise NodeStateError(exc.code, str(exc)) from None


async def commit(
    user: UserService, changes: Mapping[str, bytes], outgoing: Iterable[Outgoing] = ()
) -> None:
    """Store the blobs an agent step changed, then send what it returned."""
    for key, blob in changes.items():
        await user.state_put(key, blob)
    await send_all(user, outgoing)


async def load_map(user: UserService, key: str) -> EntryMap:
    """The map stored under ``key`` (empty if none)."""
    with state_errors():
        return decode_map(await user.state_get(key), key)


async def store_map(user: UserService, key: str, value: EntryMap) -> None:
    """Durably replace the map under ``key``."""
    await user.state_put(key, encode_map(value))


class _Stepped(Protocol):
    _steps: trio.Lock


_S = TypeVar("_S", bound=_Stepped)
_P = ParamSpec("_P")
_R = TypeVar("_R")


def one_step_at_a_time(
    method: Callable[Concatenate[_S, _P], Awaitable[_R]],
) -> Callable[Concatenate[_S, _P], Awaitable[_R]]:
    """Run ``method`` under its service's ``_steps`` lock (see the module's text)."""

    @functools.wraps(method)
    async def serialized(self: _S, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        async with self._steps:
            return await method(self, *args, **kwargs)

    return serialized
