"""Profile changes are made one at a time.

Setting a profile reads the stored one, signs a revision and stores it, with
awaits in between. Two changes at once (a client saving two fields in
parallel) would each revise the profile both read, and the later write
would drop the earlier change.
"""

from __future__ import annotations

import types
from typing import Any

import trio
import trio.testing

from dchat_identity import Identity, Visibility
from dchat_node.user._profiles import ProfileService


class GatedUser:
    """The parts of ``UserService`` the profile shell uses; the first read waits after reading."""

    def __init__(self) -> None:
        self.identity, self.has_identity = Identity.generate(), True
        self.blobs: dict[str, bytes] = {}
        self.gate, self._reads = trio.Event(), 0
        self.agent = types.SimpleNamespace(on_control=lambda kind, handler: None)

    async def state_get(self, key: str) -> bytes | None:
        found = self.blobs.get(key)
        self._reads += 1
        if self._reads == 1:
            await self.gate.wait()
        return found

    async def state_put(self, key: str, value: bytes) -> None:
        await trio.lowlevel.checkpoint()
        self.blobs[key] = value


class Recorder:
    """Stands in for the document and sync services: records what was published."""

    def __init__(self) -> None:
        self.calls: list[Any] = []

    async def publish(self, **changes: Any) -> None:
        await trio.lowlevel.checkpoint()
        self.calls.append(changes)

    async def record(self, changes: Any) -> None:
        await trio.lowlevel.checkpoint()
        self.calls.append(changes)


def test_two_profile_changes_at_once_both_stay() -> None:
    user, others = GatedUser(), Recorder()
    service = ProfileService(user, others, others)  # type: ignore[arg-type]

    async def both() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(service.set, {"display_name": "Alice"}, Visibility.PUBLIC)
            await trio.testing.wait_all_tasks_blocked()  # the first has read the profile
            nursery.start_soon(service.set, {"bio": "hi"}, Visibility.CONTACTS)
            await trio.testing.wait_all_tasks_blocked()
            user.gate.set()

    trio.run(both)
    fields = trio.run(service.own)["fields"]
    assert fields == {
        "bio": {"value": "hi", "visibility": "contacts"},
        "display_name": {"value": "Alice", "visibility": "public"},
    }
