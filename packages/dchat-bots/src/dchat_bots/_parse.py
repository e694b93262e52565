"""A field-table parser for the Bot API's JSON objects.

A typed object derives from :class:`Parsed` and lists its fields in ``_FIELDS``,
in the dataclass's order: ``req(name, kind)`` or ``opt(name, kind)``, with
``key=`` where the JSON key differs from the attribute (``from``). A kind is
``INT``, ``STR``, ``BOOL``, ``FLOAT``, a class with ``from_json`` (an object)
or ``ArrayOf(cls)`` (an array of such objects).

``from_json`` walks the table once: a required field must have its kind, an
optional one may also be missing or ``null`` (then it takes its default).
Anything else is a :class:`~dchat_bots.MalformedReplyError` naming the path
(``update.message.entities[0].offset must be an integer``); keys not in the
table are ignored. Integers are never booleans. Each field's check is chosen
when the table is built, and a path is only formatted for an error or a nested
object, so parsing stays close to the speed of hand-written code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Protocol, Self

from ._errors import MalformedReplyError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = (
    "BOOL",
    "FLOAT",
    "INT",
    "STR",
    "ArrayOf",
    "Field",
    "Parsed",
    "opt",
    "req",
)


class FromJson(Protocol):
    """A class that parses itself: ``cls.from_json(value, where)``."""

    @classmethod
    def from_json(cls, value: object, where: str = ...) -> Any: ...


INT, STR, BOOL, FLOAT = "int", "str", "bool", "float"


@dataclass(frozen=True, slots=True)
class ArrayOf:
    """The kind of a JSON array of objects of ``item``."""

    item: type[FromJson]


Kind = str | type[FromJson] | ArrayOf


class Field(NamedTuple):
    """One row of a table: the attribute, its JSON key, its kind and how it may be absent."""

    name: str
    key: str
    kind: Kind
    check: Callable[[object, str, str], Any]
    required: bool
    default: object  # an optional field's value when missing or null
    missing: object  # what a required field reads when its key is absent (None: an error)


def _int(value: object, where: str, key: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise MalformedReplyError(f"{where}.{key} must be an integer")


def _str(value: object, where: str, key: str) -> str:
    if isinstance(value, str):
        return value
    raise MalformedReplyError(f"{where}.{key} must be a string")


def _bool(value: object, where: str, key: str) -> bool:
    if isinstance(value, bool):
        return value
    raise MalformedReplyError(f"{where}.{key} must be a boolean")


def _float(value: object, where: str, key: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:  # an integer beyond a float's range
            pass
    raise MalformedReplyError(f"{where}.{key} must be a number")


_SCALARS: dict[str, Callable[[object, str, str], Any]] = {
    INT: _int,
    STR: _str,
    BOOL: _bool,
    FLOAT: _float,
}


def _check(kind: Kind) -> Callable[[object, str, str], Any]:
    if isinstance(kind, str):
        return _SCALARS[kind]
    if isinstance(kind, ArrayOf):
        parse_item = kind.item.from_json

        def array(value: object, where: str, key: str) -> tuple[Any, ...]:
            if not isinstance(value, list):
                raise MalformedReplyError(f"{where}.{key} must be an array")
            return tuple(parse_item(item, f"{where}.{key}[{i}]") for i, item in enumerate(value))

        return array
    parse = kind.from_json

    def nested(value: object, where: str, key: str) -> Any:
        return parse(value, f"{where}.{key}")

    return nested


def req(name: str, kind: Kind, *, key: str | None = None, missing: object = None) -> Field:
    """A required field; with ``missing``, its key may be absent (never ``null``)."""
    return Field(name, key or name, kind, _check(kind), True, None, missing)


def opt(name: str, kind: Kind, *, key: str | None = None, default: object = None) -> Field:
    """An optional field: missing or ``null`` gives ``default``."""
    return Field(name, key or name, kind, _check(kind), False, default, None)


class Parsed:
    """Base of the typed objects: ``from_json`` driven by the class's ``_FIELDS``."""

    __slots__ = ()

    _WHERE: ClassVar[str]
    """The path named in errors when the caller gives none (``chat``)."""
    _FIELDS: ClassVar[tuple[Field, ...]]
    """The fields in the order of the dataclass's ``__init__``."""

    @classmethod
    def from_json(cls, value: object, where: str | None = None) -> Self:
        """Parse one decoded JSON value.

        Args:
            value: What ``json.loads`` gave for this object.
            where: The path named in errors (default: the object's name, e.g. ``chat``).

        Raises:
            MalformedReplyError: ``value`` is not an object, or a field is missing or
                of the wrong kind.
        """
        if where is None:
            where = cls._WHERE
        if not isinstance(value, dict):
            raise MalformedReplyError(f"{where} must be an object")
        get = value.get
        args = []
        for _name, key, _kind, check, required, default, missing in cls._FIELDS:
            item = get(key, missing)
            if item is None and not required:
                args.append(default)
            else:
                args.append(check(item, where, key))
        return cls(*args)
