"""Device-list edits are made one at a time.

Adding a device reads the identity's document chain, then publishes a version
listing the devices it read plus the new one, with awaits in between. Two
links accepted at once would each list only their own device on top of the
same version, and the later publish would drop the earlier device.
"""

from __future__ import annotations

import time
import types
from typing import Any

import trio
import trio.testing

from dchat_crypto import PrivateKey, SigningKey
from dchat_identity import DeviceCertificate, Identity
from dchat_identity.lowlevel import LocalDevice
from dchat_node.user._devices import DeviceService


class Documents:
    """Stands in for the document service: a device list, the first read held at a gate."""

    def __init__(self, devices: tuple[DeviceCertificate, ...]) -> None:
        self.devices = devices
        self.gate, self._reads = trio.Event(), 0

    async def own_chain(self) -> Any:
        head = types.SimpleNamespace(devices=self.devices)
        self._reads += 1
        if self._reads == 1:
            await self.gate.wait()
        return types.SimpleNamespace(head=head)

    async def publish(self, *, devices: tuple[DeviceCertificate, ...]) -> Any:
        await trio.lowlevel.checkpoint()
        self.devices = devices
        return types.SimpleNamespace(devices=devices)

    async def share_with_own_devices(self) -> None:
        await trio.lowlevel.checkpoint()


class User:
    """The parts of ``UserService`` the device shell uses to add a device."""

    def __init__(self, identity: Identity, local: LocalDevice) -> None:
        self.identity, self.has_identity = identity, True
        self.blobs: dict[str, bytes] = {"device.self": local.to_bytes()}

    async def state_get(self, key: str) -> bytes | None:
        await trio.lowlevel.checkpoint()
        return self.blobs.get(key)

    async def state_put(self, key: str, value: bytes) -> None:
        await trio.lowlevel.checkpoint()
        self.blobs[key] = value


def certificate(identity: Identity, name: str) -> DeviceCertificate:
    device = SigningKey.generate()
    return DeviceCertificate.issue(
        identity.signing_key, identity.identity_id, device.public_key,
        PrivateKey.generate().public_key, name=name, now=time.time(),
    )  # fmt: skip


def test_two_devices_added_at_once_are_both_listed() -> None:
    identity = Identity.generate()
    local, primary = LocalDevice.certify_primary(identity, now=time.time())
    documents, user = Documents((primary,)), User(identity, local)
    service = DeviceService(user, documents)  # type: ignore[arg-type]
    laptop, phone = certificate(identity, "laptop"), certificate(identity, "phone")

    async def both() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(service.add_device, laptop, {"os": "linux"})
            await trio.testing.wait_all_tasks_blocked()  # the first has read the device list
            nursery.start_soon(service.add_device, phone, {"os": "android"})
            await trio.testing.wait_all_tasks_blocked()
            documents.gate.set()

    trio.run(both)
    assert [cert.name for cert in documents.devices] == ["primary", "laptop", "phone"]
    facts = LocalDevice.from_bytes(user.blobs["device.self"]).facts
    assert sorted(entry["os"] for entry in facts.values()) == ["android", "linux"]
