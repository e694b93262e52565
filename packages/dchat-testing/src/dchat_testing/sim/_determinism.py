"""Key generation drawn from the simulation's seed.

The simulator derives every key it creates itself from its seeded ``rng``. Some
keys are created inside the code under test, out of the simulator's reach: the
Noise ephemeral key of every link handshake and the ephemeral key of every
sealed box. dchat-crypto makes them with ``cryptography``'s
``X25519PrivateKey.generate()`` (directly or through
:meth:`dchat_crypto.PrivateKey.generate`), which reads the operating system's
generator. While a simulation runs, this module points that constructor, and
``Ed25519PrivateKey.generate()``, at the simulation's generator, so the same
seed draws the same keys and consumes the simulation's streams the same way.

The messaging engine's cryptography has randomness this patch does not reach:
ML-KEM encapsulation happens inside OpenSSL, and X-Wing prekey seeds and AEAD
nonces come from ``os.urandom``. Its ciphertexts therefore differ between runs
of one seed, but not their sizes, and nothing the simulator decides depends on
their bytes; so the trace records sizes only (see :mod:`._simulation`).

We patch the third-party constructors rather than dchat's own classes because
they are the narrow waist every key passes through, and a stable public API,
while dchat-crypto's internals change (a first version patched
``PrivateKey.generate`` and broke when the handshake started generating
ephemerals directly; the determinism test caught it).

This is a stop-gap: the design wants randomness passed as a parameter to the
protocol objects, which dchat-crypto and dchat-network do not offer yet (see
docs/rationale.md, "Simulator"). ``tests/sim/test_determinism.py`` fails if
any other source of randomness reaches the trace.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from .._errors import SimulationError

if TYPE_CHECKING:
    import random
    from collections.abc import Iterator

__all__ = ("seeded_key_generation",)

_lock = threading.Lock()


@contextmanager
def seeded_key_generation(rng: random.Random) -> Iterator[None]:
    """Make X25519 and Ed25519 key generation in this process draw from ``rng``.

    Not re-entrant and process-wide while active: simulations are single
    threaded and must not nest.

    Raises:
        SimulationError: another simulation step is already running.
    """
    if not _lock.acquire(blocking=False):
        raise SimulationError("simulations cannot run inside each other")
    x_original = X25519PrivateKey.__dict__["generate"]
    ed_original = Ed25519PrivateKey.__dict__["generate"]

    def x25519(cls: type[X25519PrivateKey]) -> X25519PrivateKey:
        return X25519PrivateKey.from_private_bytes(rng.randbytes(32))

    def ed25519(cls: type[Ed25519PrivateKey]) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(rng.randbytes(32))

    try:
        setattr(X25519PrivateKey, "generate", classmethod(x25519))  # noqa: B010
        setattr(Ed25519PrivateKey, "generate", classmethod(ed25519))  # noqa: B010
        yield
    finally:
        setattr(X25519PrivateKey, "generate", x_original)  # noqa: B010
        setattr(Ed25519PrivateKey, "generate", ed_original)  # noqa: B010
        _lock.release()
