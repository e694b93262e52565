"""Error roots shared by every dchat package.

Every exception a dchat public API raises derives from :class:`DchatError`. Each
package adds its own root (``DchatCryptoError``, ``DchatNetworkError``, ...), and
every concrete error also carries one *kind* saying whose fault it is::

    DchatError
    ├── CallerError      the caller broke the API's contract (bad argument, wrong state)
    ├── PeerError        a remote party sent malformed, hostile or unauthentic data
    ├── TransportError   a link or I/O failure that neither side caused on purpose
    └── DchatCoreError   root of this package's errors
        ├── EncodingError(CallerError, TypeError)   value cannot be canonically encoded
        └── DecodeError(PeerError, ValueError)      bytes are not canonical CBOR within limits
            └── DecodeLimitError                   a size, depth or count limit was exceeded

Validation errors also inherit ``ValueError`` or ``TypeError`` so that generic
callers can catch them the usual way.
"""

from __future__ import annotations

__all__ = (
    "CallerError",
    "DchatCoreError",
    "DchatError",
    "DecodeError",
    "DecodeLimitError",
    "EncodingError",
    "PeerError",
    "TransportError",
)


class DchatError(Exception):
    """Root of every error raised by dchat."""


class CallerError(DchatError):
    """The caller used an API wrongly: a bad argument or a call in the wrong state."""


class PeerError(DchatError):
    """A remote party sent malformed, oversized, replayed or unauthentic data."""


class TransportError(DchatError):
    """A connection or I/O failure: refused, reset, timed out, closed early."""


class DchatCoreError(DchatError):
    """Root of the errors raised by :mod:`dchat_core`."""


class EncodingError(DchatCoreError, CallerError, TypeError):
    """A value cannot be represented in dchat's canonical encoding."""


class DecodeError(DchatCoreError, PeerError, ValueError):
    """Bytes are not a well-formed canonical encoding of an allowed value."""


class DecodeLimitError(DecodeError):
    """Input exceeded a decoding limit (total size, nesting depth or item count)."""
