"""The low-level API of dchat-privacy: building blocks beneath the everyday API.

:mod:`dchat_privacy` exports what a node needs (padding, contact proofs). This
module holds the parts they are built from, for protocol code that needs
another proof:

- the Ristretto255 group over libsodium: ``Scalar``, ``Element``, ``GROUP_ORDER``
- the Fiat-Shamir ``Transcript`` (domain-separated, framed SHA-512)
- sigma proofs: Schnorr (``prove_dlog``, ``verify_dlog``), Chaum-Pedersen
  (``prove_dleq``, ``verify_dleq``), CDS OR-proofs (``prove_or``, ``verify_or``),
  their proof types ``SigmaProof`` and ``OrProof`` and bounds ``MAX_BASES``,
  ``MAX_BRANCHES``
"""

from __future__ import annotations

from ._ristretto import GROUP_ORDER as GROUP_ORDER
from ._ristretto import Element as Element
from ._ristretto import Scalar as Scalar
from ._sigma import MAX_BASES as MAX_BASES
from ._sigma import MAX_BRANCHES as MAX_BRANCHES
from ._sigma import OrProof as OrProof
from ._sigma import SigmaProof as SigmaProof
from ._sigma import prove_dleq as prove_dleq
from ._sigma import prove_dlog as prove_dlog
from ._sigma import prove_or as prove_or
from ._sigma import verify_dleq as verify_dleq
from ._sigma import verify_dlog as verify_dlog
from ._sigma import verify_or as verify_or
from ._transcript import Transcript as Transcript

__all__ = (
    "Element",
    "GROUP_ORDER",
    "MAX_BASES",
    "MAX_BRANCHES",
    "OrProof",
    "Scalar",
    "SigmaProof",
    "Transcript",
    "prove_dleq",
    "prove_dlog",
    "prove_or",
    "verify_dleq",
    "verify_dlog",
    "verify_or",
)
