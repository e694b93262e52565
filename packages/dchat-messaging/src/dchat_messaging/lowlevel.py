"""The low-level API of dchat-messaging: the records and counters behind the engine.

:mod:`dchat_messaging` exports what a user of the messaging layer needs: the
:class:`MessagingEngine` and its store protocols, content, device addresses,
the directory, message requests, the user's messaging policy and the errors.
This module holds the contact book (:class:`ContactBook`, reached as
``UserMessaging.contacts``) with its store protocols, the records those
return or keep (outbox entries and their ids, queued controls, prekey
uploads, notices, receive counters, what a mailbox drain accepted, the
duplicate event and the set of envelopes seen that multi-path delivery needs), the
put-token book (:class:`PutTokens`, ``UserMessaging.tokens``, and its control
kind :data:`PUT_TOKEN_KIND`), the contact-proof secrets (:class:`PutProofs`,
``UserMessaging.proofs``, control kind :data:`PUT_PROOF_KIND`, section 41), the
rotating mailbox tags (:class:`MailboxTags`,
``UserMessaging.tags``, :class:`TagKey`, :class:`TagMailbox`, :data:`MAILBOX_TAG_KIND`,
:data:`CATCH_UP_LINKS`), the conversation controls and their engine
(:class:`Conversations`, ``UserMessaging.conversations``), local search
(:class:`MessageSearch`, ``UserMessaging.search``, its hits and store protocol), each
message's attachment record (:class:`AttachmentBook`, :class:`AttachmentEntry`), the
payment records and their check (:class:`Payments`, ``UserMessaging.payments``,
:class:`PaymentEntry`, :class:`PaymentIntent`, :func:`payment_ref`,
:func:`check_payment`, :data:`GIVE_UP_AFTER`), cover traffic (:class:`CoverTraffic`,
``UserMessaging.cover``, :class:`CoverDeposit`, :class:`CoverTag`, the cover payload's
:func:`encode_cover` and :func:`decode_cover`, :func:`envelope_size`,
:data:`LOOP_TIMEOUT`, :data:`DEFAULT_COVER_BUDGET`), single-use reply blocks given
and held (:class:`ReplyBlocks`, ``UserMessaging.replies``, :func:`reply_relay`,
:data:`REPLY_PREFIX`, :data:`MAX_HELD`; protocol §45) and the
envelope and control size limits, for shells and test harnesses that drive the
engine directly.
"""

from __future__ import annotations

from ._attachment import ATTACHMENT_KEY as ATTACHMENT_KEY
from ._attachment import ATTACHMENT_KINDS as ATTACHMENT_KINDS
from ._attachment import AttachmentBook as AttachmentBook
from ._attachment import AttachmentEntry as AttachmentEntry
from ._channel_book import Channels as Channels
from ._channel_wire import ChannelLink as ChannelLink
from ._contacts import ContactBook as ContactBook
from ._contacts import ContactEntry as ContactEntry
from ._contacts import ContactStore as ContactStore
from ._contacts import MessageEntry as MessageEntry
from ._contacts import UserStore as UserStore
from ._content import MAX_CONTROL as MAX_CONTROL
from ._controls import QueuedControl as QueuedControl
from ._conversation import CONVERSATION_KINDS as CONVERSATION_KINDS
from ._conversation import MAX_RECEIPT_IDS as MAX_RECEIPT_IDS
from ._conversation import MAX_TIMER as MAX_TIMER
from ._conversation import MAX_TIMER_VERSION as MAX_TIMER_VERSION
from ._conversation import TIMER_KIND as TIMER_KIND
from ._conversation import Delete as Delete
from ._conversation import Edit as Edit
from ._conversation import Reaction as Reaction
from ._conversation import Receipt as Receipt
from ._conversation import Timer as Timer
from ._conversation import Typing as Typing
from ._conversation import decode_conversation as decode_conversation
from ._conversations import Conversations as Conversations
from ._conversations import ConversationUpdate as ConversationUpdate
from ._cover import DEFAULT_COVER_BUDGET as DEFAULT_COVER_BUDGET
from ._cover import LOOP_TIMEOUT as LOOP_TIMEOUT
from ._cover import CoverDeposit as CoverDeposit
from ._cover import CoverTag as CoverTag
from ._cover import CoverTraffic as CoverTraffic
from ._cover import decode_cover as decode_cover
from ._cover import encode_cover as encode_cover
from ._cover import envelope_size as envelope_size
from ._disappear import Disappearing as Disappearing
from ._disappear import Expired as Expired
from ._engine import outbox_id as outbox_id
from ._engine import path_outbox_id as path_outbox_id
from ._envelope import MAX_ENVELOPE as MAX_ENVELOPE
from ._errors import ChannelError as ChannelError
from ._errors import GroupError as GroupError
from ._events import Duplicate as Duplicate
from ._group_anchors import AnchorJob as AnchorJob
from ._group_anchors import AnchorResend as AnchorResend
from ._group_anchors import GroupAnchors as GroupAnchors
from ._group_book import GROUP_KINDS as GROUP_KINDS
from ._group_book import Groups as Groups
from ._group_bots import BotGrant as BotGrant
from ._group_invite import InvitationParts as InvitationParts
from ._group_invite import invitation_controls as invitation_controls
from ._group_links import LINK_PREFIX as LINK_PREFIX
from ._group_links import MAX_LINK_TTL as MAX_LINK_TTL
from ._group_links import GroupLink as GroupLink
from ._group_order import OrderBatch as OrderBatch
from ._group_order import OrderEntry as OrderEntry
from ._group_order import order_channel as order_channel
from ._group_order import order_root as order_root
from ._group_store import GroupKeys as GroupKeys
from ._group_store import GroupRecord as GroupRecord
from ._groups import MAX_BATCH as MAX_BATCH
from ._groups import MAX_MEMBERS as MAX_MEMBERS
from ._groups import GroupState as GroupState
from ._groups import GroupUpdate as GroupUpdate
from ._groups import Member as Member
from ._groups import apply_update as apply_update
from ._groups import update_wins as update_wins
from ._local import ReceiveStats as ReceiveStats
from ._mailbox_tags import CATCH_UP_LINKS as CATCH_UP_LINKS
from ._mailbox_tags import MAILBOX_TAG_KIND as MAILBOX_TAG_KIND
from ._mailbox_tags import MailboxTags as MailboxTags
from ._mailbox_tags import TagKey as TagKey
from ._notices import Notice as Notice
from ._order import MAX_AHEAD as MAX_AHEAD
from ._order import ConversationOrder as ConversationOrder
from ._outbox import MAX_DEPOSIT as MAX_DEPOSIT
from ._outbox import MAX_DEPOSIT_BYTES as MAX_DEPOSIT_BYTES
from ._outbox import deposits as deposits
from ._outbox import relay_deposits as relay_deposits
from ._payment import GIVE_UP_AFTER as GIVE_UP_AFTER
from ._payment import PaymentEntry as PaymentEntry
from ._payment import PaymentIntent as PaymentIntent
from ._payment import Payments as Payments
from ._payment import check_payment as check_payment
from ._payment import payment_ref as payment_ref
from ._prekey_policy import PrekeyUpload as PrekeyUpload
from ._put_proofs import PUT_PROOF_KIND as PUT_PROOF_KIND
from ._put_proofs import PutProofs as PutProofs
from ._put_tokens import PUT_TOKEN_KIND as PUT_TOKEN_KIND
from ._put_tokens import PutTokens as PutTokens
from ._raw_seen import RawSeen as RawSeen
from ._reply_blocks import MAX_HELD as MAX_HELD
from ._reply_blocks import REPLY_PREFIX as REPLY_PREFIX
from ._reply_blocks import ReplyBlocks as ReplyBlocks
from ._reply_blocks import reply_relay as reply_relay
from ._search import MAX_SEARCH_LIMIT as MAX_SEARCH_LIMIT
from ._search import MessageSearch as MessageSearch
from ._search import SearchHit as SearchHit
from ._search import SearchStore as SearchStore
from ._seen import SeenEnvelopes as SeenEnvelopes
from ._seen import envelope_digest as envelope_digest
from ._sender_keys import MAX_SKIP as MAX_SKIP
from ._sender_keys import MAX_SKIPPED as MAX_SKIPPED
from ._sender_keys import GroupCiphertext as GroupCiphertext
from ._sender_keys import SenderChain as SenderChain
from ._sender_keys import decode_distribution as decode_distribution
from ._sender_keys import decode_keyed as decode_keyed
from ._sender_keys import encode_distribution as encode_distribution
from ._sender_keys import encode_keyed as encode_keyed
from ._sender_keys import message_hash as message_hash
from ._store import OutboxEntry as OutboxEntry
from ._user import Accepted as Accepted
from ._user import RawMailbox as RawMailbox
from ._user import TagMailbox as TagMailbox
from ._user import UserMailbox as UserMailbox

__all__ = (
    "ATTACHMENT_KEY",
    "ATTACHMENT_KINDS",
    "Accepted",
    "AnchorJob",
    "AnchorResend",
    "AttachmentBook",
    "AttachmentEntry",
    "BotGrant",
    "CATCH_UP_LINKS",
    "CONVERSATION_KINDS",
    "ChannelError",
    "ChannelLink",
    "Channels",
    "ContactBook",
    "ContactEntry",
    "ContactStore",
    "ConversationOrder",
    "ConversationUpdate",
    "Conversations",
    "CoverDeposit",
    "CoverTag",
    "CoverTraffic",
    "DEFAULT_COVER_BUDGET",
    "Delete",
    "Disappearing",
    "Duplicate",
    "Edit",
    "Expired",
    "GIVE_UP_AFTER",
    "GROUP_KINDS",
    "GroupAnchors",
    "GroupCiphertext",
    "GroupError",
    "GroupKeys",
    "GroupLink",
    "GroupRecord",
    "GroupState",
    "GroupUpdate",
    "Groups",
    "InvitationParts",
    "LINK_PREFIX",
    "LOOP_TIMEOUT",
    "MAILBOX_TAG_KIND",
    "MAX_AHEAD",
    "MAX_BATCH",
    "MAX_CONTROL",
    "MAX_DEPOSIT",
    "MAX_DEPOSIT_BYTES",
    "MAX_ENVELOPE",
    "MAX_HELD",
    "MAX_LINK_TTL",
    "MAX_MEMBERS",
    "MAX_RECEIPT_IDS",
    "MAX_SEARCH_LIMIT",
    "MAX_SKIP",
    "MAX_SKIPPED",
    "MAX_TIMER",
    "MAX_TIMER_VERSION",
    "MailboxTags",
    "Member",
    "MessageEntry",
    "MessageSearch",
    "Notice",
    "OrderBatch",
    "OrderEntry",
    "OutboxEntry",
    "PUT_PROOF_KIND",
    "PUT_TOKEN_KIND",
    "PaymentEntry",
    "PaymentIntent",
    "Payments",
    "PrekeyUpload",
    "PutProofs",
    "PutTokens",
    "QueuedControl",
    "REPLY_PREFIX",
    "RawMailbox",
    "RawSeen",
    "Reaction",
    "Receipt",
    "ReceiveStats",
    "ReplyBlocks",
    "SearchHit",
    "SearchStore",
    "SeenEnvelopes",
    "SenderChain",
    "TIMER_KIND",
    "TagKey",
    "TagMailbox",
    "Timer",
    "Typing",
    "UserMailbox",
    "UserStore",
    "apply_update",
    "check_payment",
    "decode_conversation",
    "decode_cover",
    "decode_distribution",
    "decode_keyed",
    "deposits",
    "encode_cover",
    "encode_distribution",
    "encode_keyed",
    "envelope_digest",
    "envelope_size",
    "invitation_controls",
    "message_hash",
    "order_channel",
    "order_root",
    "outbox_id",
    "path_outbox_id",
    "payment_ref",
    "relay_deposits",
    "reply_relay",
    "update_wins",
)
