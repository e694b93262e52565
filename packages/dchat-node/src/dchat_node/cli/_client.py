"""``dchat``: the user's client, a thin shell over the SDK's ``RemoteClient``.

It must start fast (issue 19: ``dchat --help`` and ``dchat send`` under 0.3 s of
CPU): this module imports typer and nothing else heavy. Every command is
registered lazily (``_lazy``): its module, the SDK (httpx), rich, and for the
wallet the chain, load only when that command runs.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ClassVar

import typer

from ._common import DEFAULT_DIR as _DEFAULT_DIR
from ._common import with_client
from ._lazy import LazyGroups, group_of, new_part
from ._names import let_unused_in

if TYPE_CHECKING:
    from ._lazy import Loader

__all__ = ("app",)


def _basics() -> typer.Typer:
    from ._basics import basics

    return basics


@functools.cache
def _conversations() -> typer.Typer:
    from ._basics import contact_app
    from ._conversations import register_conversation_commands

    part = new_part()
    part.add_typer(contact_app, name="contact")
    register_conversation_commands(part, contact_app, with_client)
    return part


@functools.cache
def _identity() -> typer.Typer:
    from ._identity import register_identity_commands

    part = new_part()
    register_identity_commands(part, with_client)
    return part


@functools.cache
def _requests() -> typer.Typer:
    from ._requests import register_request_commands

    part = new_part()
    register_request_commands(part)
    return part


@functools.cache
def _watch() -> typer.Typer:
    from ._watch import register_watch_command

    part = new_part()
    register_watch_command(part)
    return part


@functools.cache
def _open() -> typer.Typer:
    from ._open import register_open_command

    part = new_part()
    register_open_command(part)
    return part


@functools.cache
def _search() -> typer.Typer:
    from ._search import register_search_command

    part = new_part()
    register_search_command(part, with_client)
    return part


@functools.cache
def _registered(module: str, attribute: str, register: str, name: str) -> typer.Typer:
    """Like a :func:`._lazy.group_of` part, for a module that registers with a client opener."""
    from importlib import import_module

    loaded = import_module(module, __package__)
    getattr(loaded, register)(with_client)
    part = new_part()
    part.add_typer(getattr(loaded, attribute), name=name)
    return part


@functools.cache
def _wallet() -> typer.Typer:
    let_unused_in()  # the light client runs on trio
    from ._chain import wallet_app
    from ._channels import channel_app
    from ._stealth import pay, scan, stealth_address, sweep

    wallet_app.add_typer(channel_app, name="channel")
    wallet_app.command("stealth-address")(stealth_address)
    wallet_app.command("pay")(pay)
    wallet_app.command("scan")(scan)
    wallet_app.command("sweep")(sweep)
    part = new_part()
    part.add_typer(wallet_app, name="wallet")
    return part


class _ClientGroup(LazyGroups):
    # Every ``dchat`` command: name -> (its one-line help, the loader of the part that
    # registers it), listed by ``dchat --help`` in this order without loading anything.
    # To add a command or group: write it in its own module (import rich, the SDK and
    # other heavy modules inside the functions that use them, or keep the module off
    # the fast path), add a loader above returning a part (``new_part()``) on which it
    # is registered under its name, and add the name here with the first line of its
    # help. test_cli_startup checks the help matches and that ``--help`` stays light.
    lazy: ClassVar[dict[str, tuple[str, Loader]]] = {
        "init": ("Create this node's identity and print its contact card.", _basics),
        "resync": (
            "After ``init --restore``: ask contacts for this identity's latest document.",
            _basics,
        ),
        "card": (
            "Print this identity's contact card, to give to people who should reach you.",
            _basics,
        ),
        "id": (
            "Show this identity: id, name, role of this device, document version, devices.",
            _identity,
        ),
        "block": (
            "Block an identity: its messages are dropped after decryption and counted.",
            _requests,
        ),
        "unblock": ("Let a blocked identity's messages through again.", _requests),
        "blocked": ("List blocked identities.", _requests),
        "notices": (
            'Notices such as "the session with X was reset" (safety number changes).',
            _requests,
        ),
        "watch": (
            "Print events (new messages, requests, relay status) as they arrive, until Ctrl-C.",
            _watch,
        ),
        "open": (
            "Open the chat app in the browser (a login link that works once, for 60 s).",
            _open,
        ),
        "show": (
            "One conversation with times, direction, delivered (✓) and read (✓✓) marks.",
            _conversations,
        ),
        "pay": ("Pay PEER AMOUNT on the currency chain, inside the conversation.", _conversations),
        "read": (
            "Mark PEER's messages read (a read receipt goes if read receipts are on).",
            _conversations,
        ),
        "reply": ("Send TEXT to PEER quoting MESSAGE_ID.", _conversations),
        "edit": (
            "Edit your message MESSAGE_ID to PEER (history is kept on each device).",
            _conversations,
        ),
        "delete": (
            "Delete your message for everyone: best effort (see the note it prints).",
            _conversations,
        ),
        "react": (
            "React to a message with EMOJI (one per person and emoji; --remove takes it back).",
            _conversations,
        ),
        "forward": (
            "Forward a stored message to TO (marked forwarded, no link to the original).",
            _conversations,
        ),
        "disappear": (
            "Make messages with PEER disappear DURATION (30s, 5m, 1h, 7d, 1w) after reading, "
            "or off.",
            _conversations,
        ),
        "conversation-settings": (
            "Show or change whether you send read receipts (default on) and typing (off).",
            _conversations,
        ),
        "search": (
            "Search your stored messages (sent and received) for every word of QUERY.",
            _search,
        ),
        "send": (
            "Send TEXT to TO: a contact's name, or the identity id of a message request's sender.",
            _basics,
        ),
        "inbox": (
            "Conversations, the most recent first, with unread counts and last message time.",
            _basics,
        ),
        "status": ("Show the node's status.", _basics),
        "demo": (
            "Relay + two users as real processes: an E2E message to an offline recipient.",
            _basics,
        ),
        "contact": ("Manage contacts.", _conversations),
        "guardian": (
            "Guardians: who can give your identity back.",
            group_of("._guardians", "guardian_app", "guardian"),
        ),
        "burner": ("Burners: throwaway identities.", group_of("._burners", "burner_app", "burner")),
        "bot": (
            "Bots: this node's identity as a bot (Bot API).",
            group_of("._bots", "bot_app", "bot"),
        ),
        "handle": (
            "Your public @handle on the chat chain.",
            group_of("._handles", "handle_app", "handle"),
        ),
        "attachment": (
            "Attachments of received and sent messages.",
            group_of("._attachments", "attachment_app", "attachment"),
        ),
        "group": (
            "Private groups (end-to-end encrypted).",
            functools.partial(
                _registered, "._groups", "group_app", "register_group_commands", "group"
            ),
        ),
        "channel": (
            "Broadcast channels (encrypted posts fanned out by relays).",
            functools.partial(
                _registered,
                "._broadcast",
                "broadcast_app",
                "register_broadcast_commands",
                "channel",
            ),
        ),
        "device": ("Link, list and revoke this identity's devices.", _identity),
        "profile": ("Your profile and the profiles of others.", _identity),
        "requests": ("Message requests: mail from people who are not contacts.", _requests),
        "wallet": ("A currency-chain wallet.", _wallet),
        "tokens": (
            "Paid tokens that let your mail past busy relays without work.",
            group_of("._tokens", "tokens_app", "tokens"),
        ),
        "privacy": (
            "Metadata privacy: cover traffic, onion mode.",
            group_of("._privacy", "privacy_app", "privacy"),
        ),
    }


app = typer.Typer(
    help="dchat: end-to-end encrypted chat, from the command line.",
    no_args_is_help=True,
    cls=_ClientGroup,
    rich_markup_mode=None,  # plain help: rich costs ~0.1 s of start-up
    pretty_exceptions_enable=False,
    context_settings={"max_content_width": 120},  # up to 120 columns when the terminal has them
)

DataDir = Annotated[
    Path, typer.Option("--data-dir", envvar="DCHAT_DATA_DIR", help="The node's data directory.")
]


@app.callback()
def _options(ctx: typer.Context, data_dir: DataDir = _DEFAULT_DIR) -> None:
    """Options shared by every ``dchat`` command."""
    ctx.obj = data_dir
