"""Bots in private groups: what each may do, which texts are commands to it, the command control.

Theory of operation
-------------------
A bot is in a group as a member row with a fourth field, its grant (a
:class:`BotGrant`, an integer of three bits), so the grant is covered by the
group's signed state hash like every role: ``read`` (``commands``: only
texts that are commands to it; ``all``: every message), ``post`` and
``admin`` (add members, remove members who are not admins). Only a group
admin adds a bot (``bot`` update) or changes its grant (``grant``).

Every member's node enforces the grant, not the bot's:

* A bot that reads ``commands`` is not handed any sender chain of the
  group, so the group's ciphertexts are closed to it. A member whose text
  is a command addressed to it (:func:`addressed`) sends that one text to
  the bot's devices pairwise, over the ratchet sessions, as ``group.cmd``
  (:func:`encode_command`), beside the group message every member gets.
* A bot that reads ``all`` gets the sender chains like a member (from the
  iteration current when it was granted: nothing before).
* A message from a bot without ``post``, and an update from a bot that is
  not ``admin`` (other than leaving), are refused by every member.

A command is a text whose first word is ``/name`` (1-32 of ``A-Za-z0-9_``)
or ``/name@bot``; without ``@bot`` it goes to every commands-only bot of the
group, with it only to those whose card name, spaces removed, matches
(case-insensitive).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from dchat_core import DecodeError, DecodeLimits, Fields, canonical_decode, canonical_encode

from ._errors import GroupError

__all__ = (
    "COMMAND_KIND",
    "BotGrant",
    "addressed",
    "decode_command",
    "encode_command",
)

COMMAND_KIND: Final = "group.cmd"
READ_ALL: Final = 1
POST: Final = 2
ADMINISTER: Final = 4
_BITS: Final = READ_ALL | POST | ADMINISTER
_COMMAND: Final = re.compile(r"/([A-Za-z0-9_]{1,32})(?:@(\S{1,64}))?(?:\s|$)")
_LIMITS: Final = DecodeLimits(max_size=80_000, max_depth=2, max_items=8)


@dataclass(frozen=True, slots=True)
class BotGrant:
    """What one bot may do in one group (see the module docstring)."""

    read_all: bool = False
    post: bool = True
    admin: bool = False

    def to_wire(self) -> int:
        """Bits: 1 reads all messages, 2 posts, 4 administers."""
        return READ_ALL * self.read_all | POST * self.post | ADMINISTER * self.admin

    @classmethod
    def from_wire(cls, raw: object) -> BotGrant:
        """Parse an untrusted grant.

        Raises:
            ValueError: not an integer of the three bits.
        """
        if not isinstance(raw, int) or isinstance(raw, bool) or not 0 <= raw <= _BITS:
            raise ValueError("a bot's grant is an integer 0-7")
        return cls(bool(raw & READ_ALL), bool(raw & POST), bool(raw & ADMINISTER))

    @classmethod
    def parse(cls, read: str, *, post: bool, admin: bool) -> BotGrant:
        """From the user's words: ``read`` is ``commands`` or ``all``.

        Raises:
            ValueError: another ``read``.
        """
        if read not in ("commands", "all"):
            raise ValueError("read is 'commands' or 'all'")
        return cls(read == "all", post, admin)

    def to_json(self) -> dict[str, object]:
        """``{"read": "commands"|"all", "post": bool, "admin": bool}``."""
        return {"read": "all" if self.read_all else "commands", "post": self.post,
                "admin": self.admin}  # fmt: skip


def _handle(name: str) -> str:
    return "".join(name.split()).lower()


def addressed(text: str, bot_name: str) -> bool:
    """Whether ``text`` is a command to the bot whose card says ``bot_name``."""
    found = _COMMAND.match(text)
    if found is None:
        return False
    target = found.group(2)
    return target is None or _handle(target) == _handle(bot_name)


def encode_command(group: bytes, plain: bytes) -> bytes:
    """``group.cmd``: ``{"v": 1, "g": group id, "p": the text's plaintext}`` (the plaintext
    is the map a group ciphertext carries: ``{"mid", "ts", "text"}``)."""
    return canonical_encode({"v": 1, "g": group, "p": plain})


def decode_command(data: bytes) -> tuple[bytes, bytes]:
    """``(group id, plaintext)`` of an untrusted ``group.cmd``.

    Raises:
        GroupError: ``malformed``.
    """
    try:
        f = Fields(canonical_decode(data, _LIMITS), "group command", frozenset({"v", "g", "p"}))
        if f.get_int("v") != 1:
            raise DecodeError("version")
        return f.get_bytes("g", size=32), f.get_bytes("p", max_size=70_000)
    except (DecodeError, ValueError):
        raise GroupError("malformed", "a group command is malformed") from None
