"""The repository layout on a destination: which blob lives under which name.

::

    config                       sealed RepoConfig (kind b"f", id b"")
    keys/<16 hex>                the master key wrapped under one passphrase
    snapshots/<32 hex>           sealed Manifest (kind b"s", id = the 16-byte snapshot id)
    data/<2 hex>/<64 hex>        sealed chunk (kind b"c", id = the 32-byte chunk id)

The two-character fan-out keeps directories small on local and network file
systems, as restic and git do.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ._crypto import KIND_CHUNK, KIND_CONFIG, KIND_SNAPSHOT
from ._errors import BackupIntegrityError
from ._manifest import Manifest, RepoConfig

if TYPE_CHECKING:
    from ._crypto import RepositoryKeys
    from ._destination import BackupDestination

__all__ = ("BlobStore", "chunk_name", "snapshot_name")

CONFIG = "config"
KEYS, SNAPSHOTS, DATA = "keys", "snapshots", "data"
_CHUNK_NAME = re.compile(r"data/([0-9a-f]{2})/([0-9a-f]{64})")
_SNAPSHOT_NAME = re.compile(r"snapshots/([0-9a-f]{32})")


def chunk_name(chunk_id: bytes) -> str:
    """The blob name of a chunk."""
    hexid = chunk_id.hex()
    return f"{DATA}/{hexid[:2]}/{hexid}"


def snapshot_name(snapshot_id: bytes) -> str:
    """The blob name of a snapshot manifest."""
    return f"{SNAPSHOTS}/{snapshot_id.hex()}"


class BlobStore:
    """Sealed blobs of one repository on a destination.

    Args:
        destination: Where the blobs are stored.
        keys: The unlocked repository keys.
    """

    def __init__(self, destination: BackupDestination, keys: RepositoryKeys) -> None:
        self.destination = destination
        self.keys = keys

    def put_config(self, config: RepoConfig) -> None:
        """Write the repository config."""
        self.destination.put(CONFIG, self.keys.seal(KIND_CONFIG, b"", config.encode()))

    def config(self) -> RepoConfig:
        """Read and authenticate the repository config."""
        blob = self.destination.get(CONFIG)
        return RepoConfig.decode(self.keys.open(KIND_CONFIG, b"", blob, name=CONFIG))

    def chunk_ids(self) -> set[bytes]:
        """Ids of every chunk stored (well-formed names only)."""
        ids = set()
        for name in self.destination.list(DATA):
            match = _CHUNK_NAME.fullmatch(name)
            if match and match.group(2).startswith(match.group(1)):
                ids.add(bytes.fromhex(match.group(2)))
        return ids

    def put_chunk(self, chunk_id: bytes, data: bytes) -> int:
        """Seal and store a chunk; returns the number of bytes written."""
        blob = self.keys.seal(KIND_CHUNK, chunk_id, data)
        self.destination.put(chunk_name(chunk_id), blob)
        return len(blob)

    def chunk(self, chunk_id: bytes) -> bytes:
        """Read a chunk and check that its content hashes to its id."""
        name = chunk_name(chunk_id)
        data = self.keys.open(KIND_CHUNK, chunk_id, self.destination.get(name), name=name)
        if self.keys.chunk_id(data) != chunk_id:
            raise BackupIntegrityError(f"blob {name} failed authentication")
        return data

    def delete_chunk(self, chunk_id: bytes) -> None:
        """Remove a chunk."""
        self.destination.delete(chunk_name(chunk_id))

    def snapshot_ids(self) -> list[bytes]:
        """Ids of every stored snapshot manifest."""
        names = self.destination.list(SNAPSHOTS)
        return [bytes.fromhex(m.group(1)) for m in map(_SNAPSHOT_NAME.fullmatch, names) if m]

    def put_manifest(self, manifest: Manifest) -> int:
        """Seal and store a manifest; returns the number of bytes written."""
        blob = self.keys.seal(KIND_SNAPSHOT, manifest.snapshot_id, manifest.encode())
        self.destination.put(snapshot_name(manifest.snapshot_id), blob)
        return len(blob)

    def manifest(self, snapshot_id: bytes) -> Manifest:
        """Read, authenticate and parse a manifest."""
        name = snapshot_name(snapshot_id)
        data = self.keys.open(KIND_SNAPSHOT, snapshot_id, self.destination.get(name), name=name)
        return Manifest.decode(snapshot_id, data)

    def delete_manifest(self, snapshot_id: bytes) -> None:
        """Remove a snapshot manifest (its chunks stay until pruned)."""
        self.destination.delete(snapshot_name(snapshot_id))
