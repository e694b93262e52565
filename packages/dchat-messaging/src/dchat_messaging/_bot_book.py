"""A bot's book: its profile, its commands, its scoped tokens (kept hashed) and its offset.

Sans-IO: the shell loads it with :meth:`BotBook.from_json`, calls it, and saves
:meth:`BotBook.to_json` after every change. Randomness and time are parameters.

A token reads ``<token_id>:<secret>`` (the shape Telegram's clients expect):
``secret`` is 32 random bytes, base64url without padding. The book keeps only
``SHA-256(secret)`` per token id; :meth:`BotBook.authorize` hashes what it is
given and compares in constant time, and answers one opaque ``401
Unauthorized`` for a malformed, unknown, revoked or wrong token. Each token has
scopes (:data:`SCOPES`): ``updates`` (getUpdates), ``send`` (sendMessage) and
``manage`` (getMe needs none; setMyCommands needs ``manage``). Bot tokens are
not the node's admin token and open nothing but the Bot API.

An *open* bot (:attr:`BotBook.open`, on unless turned off, as on Telegram)
answers strangers: its node accepts a message request as soon as it comes,
making the sender a contact named by :func:`stranger_name` (a leading ``~``
marks it as one the bot accepted, not the owner).

What the bot asks for in groups (:attr:`BotBook.groups`, a
:class:`~dchat_messaging.lowlevel.BotGrant`; by default commands only and
post, Telegram's privacy mode) is shown to a user before they add it
(``dchat bot info``); the group's admin grants it, more or less.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from typing import Any, Final

from ._errors import BotApiError
from ._group_bots import BotGrant

__all__ = ("SCOPES", "BotBook", "BotCommand", "BotToken", "stranger_name")

SCOPES: Final = frozenset({"updates", "send", "manage"})
MAX_TOKENS: Final = 32
MAX_COMMANDS: Final = 100
SECRET_BYTES: Final = 32
_COMMAND = re.compile(r"[a-z0-9_]{1,32}")
_TOKEN = re.compile(r"([0-9]{1,9}):([A-Za-z0-9_-]{43})")
STRANGER_MARK: Final = "~"


def stranger_name(card_name: str, identity_id: str) -> str:
    """The contact name an open bot gives a stranger it accepted (unique, at most 50).

    ``~``, the first 40 characters of the name on their card, a space and the
    last 8 characters of their identity id (a card's name is no one's
    promise: two strangers may both say "Alice").
    """
    return f"{STRANGER_MARK}{card_name[:40]} {identity_id[-8:]}"


def _refused(description: str = "Bad Request: invalid parameters") -> BotApiError:
    return BotApiError(400, description)


@dataclass(frozen=True)
class BotCommand:
    """One command the bot lists: ``command`` (no slash) and its description."""

    command: str
    description: str

    def __post_init__(self) -> None:
        if not _COMMAND.fullmatch(self.command):
            raise _refused("Bad Request: a command is 1-32 of a-z, 0-9 and _")
        if not 1 <= len(self.description) <= 256:
            raise _refused("Bad Request: a command description is 1-256 characters")


@dataclass
class BotToken:
    """A token as the book keeps it: its id, the SHA-256 of its secret, its scopes."""

    token_id: int
    digest: bytes
    scopes: frozenset[str]
    created_at: float
    revoked: bool = False

    def summary(self) -> dict[str, Any]:
        """What listing the tokens shows (never the digest)."""
        return {
            "token_id": self.token_id,
            "scopes": sorted(self.scopes),
            "created_at": self.created_at,
            "revoked": self.revoked,
        }


@dataclass
class BotBook:
    """The bot of one node: profile, commands, tokens and the update offset."""

    name: str
    identity_id: str
    description: str = ""
    commands: list[BotCommand] = field(default_factory=list)
    tokens: list[BotToken] = field(default_factory=list)
    offset: int = 0
    """The first update id not yet confirmed by ``getUpdates`` (an event cursor)."""
    open: bool = True
    """Whether strangers' message requests are accepted as they come."""
    groups: BotGrant = field(default_factory=BotGrant)
    """What the bot asks for in groups (shown before it is added; the admin grants)."""

    def __post_init__(self) -> None:
        if not 1 <= len(self.name) <= 64:
            raise _refused("Bad Request: a bot name is 1-64 characters")
        if len(self.description) > 512:
            raise _refused("Bad Request: a description is at most 512 characters")

    def issue(self, scopes: frozenset[str], secret: bytes, now: float) -> str:
        """Add a token with ``scopes`` for the random ``secret``; its text (shown once)."""
        if not scopes or not scopes <= SCOPES:
            raise _refused(f"Bad Request: scopes are a non-empty subset of {sorted(SCOPES)}")
        if len(secret) != SECRET_BYTES:
            raise _refused("Bad Request: a token secret is 32 random bytes")
        if sum(not t.revoked for t in self.tokens) >= MAX_TOKENS:
            raise _refused("Bad Request: too many live tokens; revoke one")
        token_id = max((t.token_id for t in self.tokens), default=0) + 1
        digest = hashlib.sha256(secret).digest()
        self.tokens.append(BotToken(token_id, digest, frozenset(scopes), now))
        return f"{token_id}:{base64.urlsafe_b64encode(secret).rstrip(b'=').decode()}"

    def revoke(self, token_id: int) -> None:
        """Revoke a token for good (its id is never reused)."""
        for token in self.tokens:
            if token.token_id == token_id:
                token.revoked = True
                return
        raise BotApiError(404, "Not Found: no such token")

    def authorize(self, text: str, scope: str | None) -> BotToken:
        """The live token ``text`` names, if it carries ``scope`` (None: any token).

        Raises:
            BotApiError: 401 for a malformed, unknown, wrong or revoked token (one
                answer for all), 403 for a good token without ``scope``.
        """
        match = _TOKEN.fullmatch(text)
        given = b""
        if match is not None:
            given = base64.urlsafe_b64decode(match.group(2) + "=")
        digest = hashlib.sha256(given).digest()
        wanted = int(match.group(1)) if match is not None else -1
        found = None
        for token in self.tokens:
            same = hmac.compare_digest(token.digest, digest)
            if token.token_id == wanted and same and not token.revoked:
                found = token
        if found is None:
            raise BotApiError(401, "Unauthorized")
        if scope is not None and scope not in found.scopes:
            raise BotApiError(403, f"Forbidden: the token lacks the {scope!r} scope")
        return found

    def set_commands(self, commands: list[BotCommand]) -> None:
        if len(commands) > MAX_COMMANDS:
            raise _refused("Bad Request: at most 100 commands")
        if len({c.command for c in commands}) != len(commands):
            raise _refused("Bad Request: a command is listed twice")
        self.commands = list(commands)

    def set_description(self, description: str) -> None:
        if len(description) > 512:
            raise _refused("Bad Request: a description is at most 512 characters")
        self.description = description

    def set_open(self, on: bool) -> None:
        """Answer strangers (accept their message requests as they come) or not."""
        self.open = on

    def set_groups(self, grant: BotGrant) -> None:
        """Ask for ``grant`` in the groups the bot is added to from now on."""
        self.groups = grant

    def confirm(self, offset: int) -> None:
        """Forget the updates before ``offset`` (the offset only moves forward)."""
        self.offset = max(self.offset, offset)

    def summary(self) -> dict[str, Any]:
        """The bot as the management API shows it (no secrets)."""
        return {
            "name": self.name,
            "identity_id": self.identity_id,
            "description": self.description,
            "commands": [c.__dict__ for c in self.commands],
            "tokens": [t.summary() for t in self.tokens],
            "offset": self.offset,
            "open": self.open,
            "groups": self.groups.to_json(),
        }

    def to_json(self) -> bytes:
        state = self.summary()
        state["tokens"] = [t.summary() | {"digest": t.digest.hex()} for t in self.tokens]
        return json.dumps(state, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> BotBook:
        """Load a book saved by :meth:`to_json` (a damaged one: ``BotApiError`` 500)."""
        try:
            state = json.loads(data)
            tokens = [
                BotToken(
                    int(t["token_id"]),
                    bytes.fromhex(t["digest"]),
                    frozenset(t["scopes"]),
                    float(t["created_at"]),
                    bool(t["revoked"]),
                )
                for t in state["tokens"]
            ]
            commands = [BotCommand(c["command"], c["description"]) for c in state["commands"]]
            asked = state.get("groups", {"read": "commands", "post": True, "admin": False})
            return cls(
                str(state["name"]),
                str(state["identity_id"]),
                str(state["description"]),
                commands,
                tokens,
                int(state["offset"]),
                bool(state.get("open", True)),  # a book from before the setting: open
                BotGrant.parse(
                    str(asked["read"]), post=bool(asked["post"]), admin=bool(asked["admin"])
                ),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise BotApiError(500, "Internal Server Error: the bot book is damaged") from exc
