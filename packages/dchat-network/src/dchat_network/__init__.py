"""dchat-network: the link protocol (sans-IO), the relay protocol and probes, the trio transport."""

from __future__ import annotations

from ._errors import DchatNetworkError as DchatNetworkError
from ._errors import HandshakeFailedError as HandshakeFailedError
from ._errors import LinkClosedError as LinkClosedError
from ._errors import LinkProtocolError as LinkProtocolError
from ._errors import LinkTimeoutError as LinkTimeoutError
from ._errors import ProbeError as ProbeError
from ._errors import RelayBusyError as RelayBusyError
from ._errors import RelayProtocolError as RelayProtocolError
from ._link import DEFAULT_MAX_MESSAGE as DEFAULT_MAX_MESSAGE
from ._link_stats import LinkStats as LinkStats
from ._probe_driver import run_prober as run_prober
from ._prober import Prober as Prober
from ._prober import ProbeTarget as ProbeTarget
from ._prober import listing_targets as listing_targets
from ._relay import RelayError as RelayError
from ._relay import RelayMessage as RelayMessage
from ._relay_host import RelayHost as RelayHost
from ._relay_limits import RelayLimits as RelayLimits
from ._relay_links import MailboxLink as MailboxLink
from ._relay_links import ReconnectPolicy as ReconnectPolicy
from ._relay_links import RelayPool as RelayPool
from ._relay_links import links_state as links_state
from ._relay_server import MailboxStore as MailboxStore
from ._relay_server import PrekeyStore as PrekeyStore
from ._relay_server import RelayClient as RelayClient
from ._relay_server import RelayReply as RelayReply
from ._relay_server import RelayServer as RelayServer
from ._relay_topics import TopicStore as TopicStore
from ._session import RelaySession as RelaySession
from ._session import relay_session as relay_session
from ._trio import Link as Link
from ._trio import connect as connect
from ._trio import open_link as open_link
from ._trio import serve_links as serve_links

__all__ = (
    "DEFAULT_MAX_MESSAGE",
    "DchatNetworkError",
    "HandshakeFailedError",
    "Link",
    "LinkClosedError",
    "LinkProtocolError",
    "LinkStats",
    "LinkTimeoutError",
    "MailboxLink",
    "MailboxStore",
    "PrekeyStore",
    "ProbeError",
    "ProbeTarget",
    "Prober",
    "ReconnectPolicy",
    "RelayBusyError",
    "RelayClient",
    "RelayError",
    "RelayHost",
    "RelayLimits",
    "RelayMessage",
    "RelayPool",
    "RelayProtocolError",
    "RelayReply",
    "RelayServer",
    "RelaySession",
    "TopicStore",
    "connect",
    "links_state",
    "listing_targets",
    "open_link",
    "relay_session",
    "run_prober",
    "serve_links",
)
