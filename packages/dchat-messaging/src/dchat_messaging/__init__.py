"""dchat-messaging: the messaging engine, its sessions, envelopes and message content.

:class:`MessagingEngine` is the sans-IO core every node, simulator and embedded
client drives: Double Ratchet sessions set up by X-Wing to published prekey
bundles, fan-out to every device, sealing and opening, dedup and durable state
through a :class:`MessageStore`. Around it, the sans-IO pieces a user node
(or the simulator) composes: :class:`LocalEngines` (the engines of its local
identities, fan-out), :class:`DocumentDirectory` (which devices speak for
whom), :class:`MessageRequests` (mail from strangers, blocking, retired keys)
and :class:`Notices`, all held together with a user node's rules (contacts,
quiet contacts, what a received envelope came to, bundle backoff) by
:class:`UserMessaging`. Attachments: a message may carry an :class:`Attachment`
descriptor; sealing, opening and re-validating the file itself is in the
named module :mod:`dchat_messaging.attachments` (which needs dchat-storage).
Payments: a message may claim a :class:`Payment` on the currency chain, which
the recipient's node checks against what its light client proved
(:class:`ProvenPayment`); a refusal is a :class:`PaymentRefusedError`.
"""

from __future__ import annotations

from ._attachment import Attachment as Attachment
from ._content import MAX_TEXT as MAX_TEXT
from ._content import Content as Content
from ._devices import DeviceAddress as DeviceAddress
from ._devices import DeviceKeys as DeviceKeys
from ._directory import DeviceDirectory as DeviceDirectory
from ._directory import DocumentDirectory as DocumentDirectory
from ._engine import MessagingEngine as MessagingEngine
from ._envelope import SealedEnvelope as SealedEnvelope
from ._errors import AttachmentRefusedError as AttachmentRefusedError
from ._errors import BundleRejectedError as BundleRejectedError
from ._errors import ContentError as ContentError
from ._errors import ConversationError as ConversationError
from ._errors import DchatMessagingError as DchatMessagingError
from ._errors import EngineStateError as EngineStateError
from ._errors import EnvelopeRejectedError as EnvelopeRejectedError
from ._errors import MalformedEnvelopeError as MalformedEnvelopeError
from ._errors import PaymentRefusedError as PaymentRefusedError
from ._errors import RequestError as RequestError
from ._events import EngineEvent as EngineEvent
from ._events import MessageReceived as MessageReceived
from ._events import Rejected as Rejected
from ._events import SessionReset as SessionReset
from ._local import LocalEngines as LocalEngines
from ._notices import Notices as Notices
from ._outbox import Outbox as Outbox
from ._outbox import RetryPolicy as RetryPolicy
from ._payment import Payment as Payment
from ._payment import ProvenPayment as ProvenPayment
from ._prekey_policy import PrekeyPolicy as PrekeyPolicy
from ._requests import MessageRequest as MessageRequest
from ._requests import MessageRequests as MessageRequests
from ._store import MessageStore as MessageStore
from ._store import StateStore as StateStore
from ._user import UserMessaging as UserMessaging

__all__ = (
    "Attachment",
    "AttachmentRefusedError",
    "BundleRejectedError",
    "Content",
    "ContentError",
    "ConversationError",
    "DchatMessagingError",
    "DeviceAddress",
    "DeviceDirectory",
    "DeviceKeys",
    "DocumentDirectory",
    "EngineEvent",
    "EngineStateError",
    "EnvelopeRejectedError",
    "LocalEngines",
    "MAX_TEXT",
    "MalformedEnvelopeError",
    "MessageReceived",
    "MessageRequest",
    "MessageRequests",
    "MessageStore",
    "MessagingEngine",
    "Notices",
    "Outbox",
    "Payment",
    "PaymentRefusedError",
    "PrekeyPolicy",
    "ProvenPayment",
    "Rejected",
    "RequestError",
    "RetryPolicy",
    "SealedEnvelope",
    "SessionReset",
    "StateStore",
    "UserMessaging",
)
