"""Mapping between a record's fields and a sealed row: payload plus blind indexes.

Each user table declares a :class:`SealedTable`: which columns are blind
indexes of which payload field, and which columns are bound into the payload's
associated data. Repositories build rows with :meth:`SealedTable.row` and read
them back with :meth:`SealedTable.fields`; re-sealing a clear database
(``_keyring``) walks the same declarations, so a new table cannot be forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._sealing import decode_payload, encode_payload

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._schema import Base
    from ._sealing import Sealer

__all__ = ("SealedTable", "index_value", "row_ad")


def index_value(sealer: Sealer, purpose: str, value: str | bytes) -> bytes:
    """Blind index of a text (UTF-8) or bytes value."""
    raw = value.encode() if isinstance(value, str) else bytes(value)
    return sealer.index(purpose, raw)


def row_ad(*parts: object) -> bytes:
    """Associated data naming a row: its key parts, each length-prefixed."""
    out = bytearray()
    for part in parts:
        raw = bytes(part) if isinstance(part, bytes | memoryview) else str(part).encode()
        out += len(raw).to_bytes(4, "big") + raw
    return bytes(out)


@dataclass(frozen=True, slots=True)
class SealedTable:
    """How one table stores its private fields.

    Attributes:
        model: The declarative model.
        key: The primary-key column; it must not change when re-sealing
            unless it is one of ``indexes``.
        indexes: Blind-index column -> (index purpose, payload field).
        ad: Columns whose values form the payload's associated data.
    """

    model: type[Base]
    key: str
    indexes: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    ad: tuple[str, ...] = ()

    @property
    def purpose(self) -> str:
        """The payload's sealing purpose: the table name."""
        return str(self.model.__tablename__)

    def index(self, sealer: Sealer, column: str, value: str | bytes) -> bytes:
        """The stored value of index ``column`` for ``value``."""
        return index_value(sealer, self.indexes[column][0], value)

    def row(
        self, sealer: Sealer, fields: Mapping[str, Any], clear: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Build the column values for a record.

        Args:
            sealer: The database's sealer.
            fields: The private fields (sealed into ``payload``).
            clear: Columns stored as given (timestamps, sizes, keys).
        """
        row = dict(clear or {})
        for column, (purpose, name) in self.indexes.items():
            row[column] = index_value(sealer, purpose, fields[name])
        row["payload"] = encode_payload(sealer, self.purpose, self._ad(row), fields)
        return row

    def fields(self, sealer: Sealer, row: Mapping[Any, Any]) -> dict[str, Any]:
        """Open a row's payload.

        Raises:
            StorageCorruptError: The payload does not authenticate or decode.
        """
        return decode_payload(sealer, self.purpose, self._ad(row), row["payload"])

    def _ad(self, row: Mapping[Any, Any]) -> bytes:
        return row_ad(*(row[column] for column in self.ad))
