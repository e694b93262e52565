"""Errors of :mod:`dchat_testing`.

::

    DchatTestingError(DchatError)
    ├── SimulationError(CallerError, ValueError)   a simulation was set up or driven wrongly
    ├── ChaosError(TransportError)                 a node process could not be started,
    │                                              signalled or reached
    └── WaitTimeoutError(AssertionError)           what a test waited for did not happen
"""

from __future__ import annotations

from dchat_core import CallerError, DchatError, TransportError

__all__ = ("ChaosError", "DchatTestingError", "SimulationError", "WaitTimeoutError")


class DchatTestingError(DchatError):
    """Root of the errors raised by :mod:`dchat_testing`."""


class SimulationError(DchatTestingError, CallerError, ValueError):
    """A simulation was configured or driven wrongly (unknown scenario, bad time...)."""


class ChaosError(DchatTestingError, TransportError):
    """A node process of the chaos harness could not be started, signalled or reached."""


class WaitTimeoutError(DchatTestingError, AssertionError):
    """A condition a test waited for did not hold in time (a test failure, not an error)."""
