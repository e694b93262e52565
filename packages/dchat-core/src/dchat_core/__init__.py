"""dchat-core: value types, identifiers, canonical encoding, error roots, clocks, histograms."""

from __future__ import annotations

from ._clock import Clock as Clock
from ._clock import ManualClock as ManualClock
from ._clock import SystemClock as SystemClock
from ._encoding import DecodeLimits as DecodeLimits
from ._encoding import canonical_decode as canonical_decode
from ._encoding import canonical_encode as canonical_encode
from ._errors import CallerError as CallerError
from ._errors import DchatCoreError as DchatCoreError
from ._errors import DchatError as DchatError
from ._errors import DecodeError as DecodeError
from ._errors import DecodeLimitError as DecodeLimitError
from ._errors import EncodingError as EncodingError
from ._errors import PeerError as PeerError
from ._errors import TransportError as TransportError
from ._histogram import LATENCY_BUCKETS as LATENCY_BUCKETS
from ._histogram import Histogram as Histogram
from ._ids import IdentityId as IdentityId
from ._ids import InvalidIdError as InvalidIdError
from ._ids import MailboxId as MailboxId
from ._ids import MessageId as MessageId
from ._ids import NodeId as NodeId
from ._records import Fields as Fields
from ._relay_address import InvalidRelayAddressError as InvalidRelayAddressError
from ._relay_address import RelayAddress as RelayAddress

__all__ = (
    "CallerError",
    "Clock",
    "DchatCoreError",
    "DchatError",
    "DecodeError",
    "DecodeLimitError",
    "DecodeLimits",
    "EncodingError",
    "Fields",
    "Histogram",
    "IdentityId",
    "InvalidIdError",
    "InvalidRelayAddressError",
    "LATENCY_BUCKETS",
    "MailboxId",
    "ManualClock",
    "MessageId",
    "NodeId",
    "PeerError",
    "RelayAddress",
    "SystemClock",
    "TransportError",
    "canonical_decode",
    "canonical_encode",
)
