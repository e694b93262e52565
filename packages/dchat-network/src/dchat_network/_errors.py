"""Errors of :mod:`dchat_network`.

::

    DchatNetworkError(DchatError)
    ├── LinkProtocolError(PeerError)        the peer broke the link protocol; the link is dead
    │   ├── HandshakeFailedError            the Noise handshake or identity proof failed
    │   └── FrameTooLargeError              a frame or message exceeded the size limit
    ├── RelayProtocolError(PeerError, ValueError)  a relay request or reply is malformed
    │   └── OnionRefusedError               an onion does not peel (``code`` says why)
    ├── OnionKeyError(PeerError, ValueError)  a relay's onion key record does not verify
    ├── OnionRouteError(CallerError, ValueError)  no onion route: too few relays, envelope too big
    ├── ProbeError(PeerError, ValueError)   a probe, receipt or audit answer does not hold
    ├── RelayBusyError(TransportError)      the relay answered ``busy``: retry after a delay
    ├── UpnpError(TransportError)           no internet gateway, or it refused or garbled a call
    ├── LinkStateError(CallerError)         the local code used the link in the wrong state
    └── LinkClosedError(TransportError)     the connection closed, reset, or timed out
        └── LinkTimeoutError                an operation did not finish within its deadline
"""

from __future__ import annotations

from dchat_core import CallerError, DchatError, PeerError, TransportError

__all__ = (
    "DchatNetworkError",
    "FrameTooLargeError",
    "HandshakeFailedError",
    "LinkClosedError",
    "LinkProtocolError",
    "LinkStateError",
    "LinkTimeoutError",
    "OnionKeyError",
    "OnionRefusedError",
    "OnionRouteError",
    "ProbeError",
    "RelayBusyError",
    "RelayProtocolError",
    "UpnpError",
)


class DchatNetworkError(DchatError):
    """Root of the errors raised by :mod:`dchat_network`."""


class LinkProtocolError(DchatNetworkError, PeerError):
    """The peer violated the link protocol. The link cannot be used any more."""


class HandshakeFailedError(LinkProtocolError):
    """The handshake failed: malformed, unauthentic, or the wrong peer identity."""


class FrameTooLargeError(LinkProtocolError):
    """A frame or message exceeded the negotiated maximum size."""


class RelayProtocolError(DchatNetworkError, PeerError, ValueError):
    """A relay protocol message is malformed or unexpected."""

    code: str | None = None
    """The relay's error code when it refused the request (``error`` reply), else None."""


class OnionRefusedError(RelayProtocolError):
    """An onion this relay cannot take: ``code`` is its ``onion_done`` answer.

    ``bad_onion`` (it does not authenticate under a current key, or its layer
    is malformed), ``replayed`` (seen in this key epoch), ``busy`` (the
    epoch's replay cache is full). Never says which check failed.
    """

    code: str

    def __init__(self, code: str) -> None:
        super().__init__(f"onion refused: {code}")
        self.code = code


class OnionFetchError(RelayProtocolError):
    """A prekey fetch through an onion failed: ``code`` says how (protocol §46).

    ``bad_reply`` (malformed or forged answer), ``replayed`` (its reply block
    already opened one), ``none`` (the mailbox relay holds no bundle),
    ``too_big``, or an ``onion_done`` result of a hop (``unreachable``, ...).
    """

    code: str

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"onion fetch failed: {code} {detail}".rstrip())
        self.code = code


class OnionKeyError(DchatNetworkError, PeerError, ValueError):
    """A relay's onion key record is malformed, expired or not signed by the expected node."""


class OnionRouteError(DchatNetworkError, CallerError, ValueError):
    """No onion route can carry this deposit (too few relays, or the envelope is too big)."""


class ProbeError(DchatNetworkError, PeerError, ValueError):
    """A probe challenge, a delivery receipt or an audit answer does not hold."""


class RelayBusyError(DchatNetworkError, TransportError):
    """The relay is over a limit (``reason``) and asks for nothing more before ``retry_after`` s.

    Nothing was stored: the caller keeps what it tried to send and tries again
    no sooner than ``retry_after`` seconds from now (the relay's backpressure).
    """

    def __init__(self, reason: str, retry_after: float, challenge: object = None) -> None:
        super().__init__(f"relay busy ({reason}): retry after {retry_after:.3f} s")
        self.reason = reason
        self.retry_after = retry_after
        self.challenge = challenge
        """With ``reason`` ``pow``: the :class:`~dchat_network.lowlevel.PowChallenge` to meet."""


class UpnpError(DchatNetworkError, TransportError):
    """The gateway is missing, refused a call (``code``: its UPnP error code) or answered badly."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class LinkStateError(DchatNetworkError, CallerError):
    """The link was used in a state that does not allow the operation."""


class LinkClosedError(DchatNetworkError, TransportError):
    """The connection is closed (by either side, by reset, or after an error)."""


class LinkTimeoutError(LinkClosedError):
    """A link operation did not complete before its deadline."""
