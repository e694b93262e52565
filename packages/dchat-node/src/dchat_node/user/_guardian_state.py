"""What the guardian, recovery and burner shells share: stored maps, errors, sending.

Each map is one settings blob (``UserService.state_put``, sealed at rest) in
the format of :func:`dchat_identity.lowlevel.decode_map`; the guardian and
recovery agents, and the burner service, keep their state this way.
:func:`state_errors` turns the agents' :class:`RecoveryStateError` into the
node's :class:`NodeStateError` with the same code (``corrupt_state``,
``not_found``, ...), which the API maps to HTTP. :func:`send_all` sends what
an agent returned; :func:`check_main` keeps burners out of guardian business.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

from dchat_identity.lowlevel import (
    RecoveryStateError,
    UnexpectedRecoveryError,
    decode_map,
    encode_map,
)

from .._errors import NodeStateError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from dchat_identity import Identity
    from dchat_identity.lowlevel import EntryMap, Outgoing

    from ._service import UserService

__all__ = (
    "check_main",
    "load_blobs",
    "load_map",
    "send_all",
    "state_errors",
    "store_blobs",
    "store_map",
)


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


async def load_blobs(user: UserService, keys: Iterable[str]) -> dict[str, bytes | None]:
    """The blobs stored under ``keys`` (``None`` where nothing is)."""
    return {key: await user.state_get(key) for key in keys}


async def store_blobs(user: UserService, blobs: dict[str, bytes]) -> None:
    """Durably replace each blob under its key."""
    for key, blob in blobs.items():
        await user.state_put(key, blob)


async def load_map(user: UserService, key: str) -> EntryMap:
    """The map stored under ``key`` (empty if none)."""
    with state_errors():
        return decode_map(await user.state_get(key), key)


async def store_map(user: UserService, key: str, value: EntryMap) -> None:
    """Durably replace the map under ``key``."""
    await user.state_put(key, encode_map(value))
