"""A validator's prober, sans-IO: challenges in flight, per-epoch success, the uptime report.

Theory of operation
-------------------
A validator probes every relay of the chat chain's directory a few times per
reward epoch (the shell decides how often; :func:`~dchat_network.run_prober`
does it every ``interval`` seconds). Each probe is one
:class:`~dchat_network.lowlevel.ProbeChallenge` from :meth:`Prober.challenge`
and exactly one outcome: :meth:`Prober.answered` (the relay's signature, which
counts only if it verifies under the key the link proved, that key's node id
is the directory's, and it came before the challenge's deadline) or
:meth:`Prober.failed` (no link, no answer, an error). An outcome for a
challenge that is not outstanding is ignored, so a duplicate or a replayed
answer cannot count twice.

Per epoch and relay the prober counts probes sent and passed; the relay's
score is ``10_000 * passed // sent`` (the currency chain's scale), and 0
for a relay this validator *convicted* in that epoch (:meth:`Prober.convict`:
it failed a receipt audit). With each probe the prober audits one random leaf
(:meth:`Prober.audit_index`) of the relay's last claimed receipt batch, if it
has one: :meth:`Prober.audited` checks the relay's answer
(:func:`~dchat_network._receipts.check_audit`) and convicts on failure.

*Proven deliveries.* A claimed batch (by its root) whose leaves passed
``audits`` of this prober's audits is *proven*: its count is added to the
relay's delivery count of the epoch in which it became proven (of the next
one when that epoch's report was taken already), once (the prober remembers
the roots it counted, :data:`COUNTED_ROOTS` per relay).
Several passes are asked for because one random leaf says little about a
batch padded with unbacked leaves: a batch of which a fraction ``f`` is
backed is counted with probability ``f ** audits`` per validator, while one
failed audit convicts the relay for the epoch, and a convicted relay's count
is 0. The report carries each relay's count beside its score (the currency
chain pays part of the epoch's rewards by the median count). Only the last
claimed batch is audited, so a batch the relay's next claim replaced before it
was proven is never counted (its receipts earn nothing): the relay's claim
policy (:class:`~dchat_network.lowlevel.ClaimPolicy`) claims at most once per interval,
long enough for many probe rounds.

Scores are keyed by the relay's *stake account* on the currency chain (the
directory entry's stake reference): that is where rewards are paid and where
stake can be slashed.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from dchat_core import InvalidIdError, NodeId

from ._errors import ProbeError
from ._probe import NONCE_SIZE, ProbeChallenge, check_probe_answer
from ._receipts import AuditAnswer, check_audit

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from dchat_crypto import SigningKey

__all__ = ("MAX_SCORE", "MAX_TARGETS", "ProbeTarget", "Prober", "ReportRow", "listing_targets")

#: A perfect score (the currency chain's ``uptime_report`` scale).
MAX_SCORE: Final = 10_000
#: The most relays one report scores (the currency chain's limit).
MAX_TARGETS: Final = 256
#: Counted batch roots remembered per relay (a root is counted once).
COUNTED_ROOTS: Final = 64
_COUNTED: Final = -1


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    """One relay to probe: where it listens, its node id and its stake account.

    Attributes:
        account: The relay's stake account on the currency chain (32 bytes).
        host: Its link address's host.
        port: Its link address's port.
        node: The node id its link must prove (and its probe answers' signer).
        batch: The Merkle root and leaf count of its last claimed receipt batch
            (audited with each probe), if any.
    """

    account: bytes
    host: str
    port: int
    node: NodeId
    batch: tuple[bytes, int] | None = None

    @classmethod
    def from_directory(
        cls, stake_ref: bytes, endpoint: str, batch: tuple[bytes, int] | None = None
    ) -> ProbeTarget:
        """A target from a directory entry's stake reference and ``NODEID@HOST:PORT`` endpoint.

        Raises:
            ProbeError: The endpoint names no node id or no valid address.
        """
        node_text, at, address = endpoint.partition("@")
        host, colon, port = address.rpartition(":")
        if len(stake_ref) != 32 or not (at and colon and host and port.isdecimal()):
            raise ProbeError(f"not a probeable directory entry: {endpoint!r}")
        try:
            node = NodeId.parse(node_text)
        except InvalidIdError:
            raise ProbeError(f"not a node id: {node_text!r}") from None
        if not 0 < int(port) < 65536:
            raise ProbeError(f"not a port: {port!r}")
        return cls(stake_ref, host.strip("[]"), int(port), node, batch)


def listing_targets(listing: Any) -> list[ProbeTarget]:
    """The probeable relays of a chat validator's ``GET /v1/chain/relays`` answer.

    An entry that is not ``{"stake_ref": hex(32), "endpoint": "NODEID@HOST:PORT", ...}``
    is left out (a relay listed without its node id cannot be probed); its
    ``"last_batch": {"root": hex(32), "count": n}``, when present, is audited.
    """
    entries = listing.get("relays") if isinstance(listing, dict) else None
    found = []
    for entry in entries if isinstance(entries, list) else []:
        try:
            stake = bytes.fromhex(entry["stake_ref"])
            found.append(ProbeTarget.from_directory(stake, str(entry["endpoint"]), _batch(entry)))
        except (ProbeError, KeyError, TypeError, ValueError):
            continue
    return found


def _batch(entry: dict[str, Any]) -> tuple[bytes, int] | None:
    last = entry.get("last_batch")
    if last is None:
        return None
    root, count = bytes.fromhex(last["root"]), last["count"]
    if len(root) != 32 or not isinstance(count, int) or count < 1:
        raise ValueError("not a receipt batch")
    return root, count


ReportRow = tuple[bytes, int, int]
"""One relay's entry of an uptime report: (stake account, score, proven deliveries)."""


@dataclass(slots=True)
class _Epoch:
    sent: Counter[bytes] = field(default_factory=Counter)
    passed: Counter[bytes] = field(default_factory=Counter)
    delivered: Counter[bytes] = field(default_factory=Counter)
    convicted: set[bytes] = field(default_factory=set)
    reported: bool = False


class Prober:
    """Probe statistics of one validator (see the module doc).

    Args:
        key: The validator's account key (signs the challenges).
        timeout_ms: An answer later than this after its challenge fails.
        report_at: The fraction of an epoch's blocks after which its report is due.
        audits: Passed audits of a claimed batch before its count is proven.
        random_bytes: The nonce source.
    """

    def __init__(
        self,
        key: SigningKey,
        *,
        timeout_ms: int = 10_000,
        report_at: float = 0.75,
        audits: int = 2,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self._key, self._timeout, self._report_at = key, timeout_ms, report_at
        self._audits = max(1, audits)
        self._random = random_bytes
        # account -> batch root -> passed audits (or _COUNTED), least recently audited first
        self._batches: dict[bytes, dict[bytes, int]] = {}
        self._epochs: dict[int, _Epoch] = {}
        self._pending: dict[bytes, tuple[ProbeTarget, ProbeChallenge]] = {}

    def _epoch(self, epoch: int) -> _Epoch:
        return self._epochs.setdefault(epoch, _Epoch())

    def challenge(self, target: ProbeTarget, epoch: int, now_ms: int) -> ProbeChallenge:
        """A fresh challenge to ``target``, counted as sent for ``epoch`` (one outcome due)."""
        challenge = ProbeChallenge.create(
            self._key, target.node, epoch, self._random(NONCE_SIZE), now_ms
        )
        self._pending[challenge.nonce] = (target, challenge)
        self._epoch(epoch).sent[target.account] += 1
        return challenge

    def answered(
        self, challenge: ProbeChallenge, relay_key: bytes, signature: bytes, now_ms: int
    ) -> bool:
        """The relay answered ``challenge``: whether the answer passed (it counts if so).

        ``relay_key``: the node key the link proved.
        """
        entry = self._pending.pop(challenge.nonce, None)
        if entry is None or entry[1] != challenge:
            return False
        target = entry[0]
        fresh = now_ms - challenge.issued_ms <= self._timeout
        passed = fresh and check_probe_answer(challenge, relay_key, signature)
        if passed:
            self._epoch(challenge.epoch).passed[target.account] += 1
        return passed

    def failed(self, challenge: ProbeChallenge) -> None:
        """No (usable) answer to ``challenge``: it stays counted as sent, not passed."""
        self._pending.pop(challenge.nonce, None)

    def audit_index(self, target: ProbeTarget) -> int | None:
        """A random leaf of ``target``'s claimed batch to audit (None: nothing claimed)."""
        if target.batch is None:
            return None
        return int.from_bytes(self._random(8), "big") % target.batch[1]

    def audited(
        self, target: ProbeTarget, epoch: int, index: int, answer: AuditAnswer | None
    ) -> bool:
        """The relay's answer to the audit of leaf ``index`` (None: none); whether it held.

        A relay that cannot back the leaf it claimed is convicted for ``epoch``;
        a batch that passed ``audits`` audits adds its count to the relay's
        proven deliveries of ``epoch`` (once per root).
        """
        assert target.batch is not None
        root, count = target.batch
        held = answer is not None and check_audit(bytes(target.node), root, count, index, answer)
        if not held:
            self.convict(epoch, target.account)
            return False
        batches = self._batches.pop(target.account, None) or {}
        self._batches[target.account] = batches  # now the most recently audited
        passes = batches.pop(root, 0)
        if passes != _COUNTED:
            passes += 1
            if passes >= self._audits:  # proven: counted in the next report taken
                later = epoch + 1 if self._epoch(epoch).reported else epoch
                self._epoch(later).delivered[target.account] += count
                passes = _COUNTED
        batches[root] = passes
        while len(batches) > COUNTED_ROOTS:
            del batches[next(iter(batches))]
        while len(self._batches) > 4 * MAX_TARGETS:
            del self._batches[next(iter(self._batches))]
        return True

    def convict(self, epoch: int, account: bytes) -> None:
        """``account``'s relay failed an audit in ``epoch``: it scores 0 in that epoch."""
        self._epoch(epoch).convicted.add(account)

    @property
    def outstanding(self) -> int:
        """Challenges without an outcome yet."""
        return len(self._pending)

    def scores(self, epoch: int) -> list[ReportRow]:
        """Each probed relay's (account, score, proven deliveries) in ``epoch``, by account.

        At most 256; a convicted relay scores and delivers 0.
        """
        book = self._epochs.get(epoch) or _Epoch()
        rows = []
        for account in sorted(book.sent)[:MAX_TARGETS]:
            if account in book.convicted:
                rows.append((account, 0, 0))
                continue
            score = MAX_SCORE * book.passed[account] // book.sent[account]
            rows.append((account, score, book.delivered[account]))
        return rows

    def take_report(self, epoch: int, offset: int, epoch_blocks: int) -> list[ReportRow] | None:
        """``epoch``'s scores once ``report_at`` of it is past (``offset`` of ``epoch_blocks``).

        Returns None before then, after the report was taken, or when nothing was probed.
        """
        book = self._epochs.get(epoch)
        due = offset >= int(epoch_blocks * self._report_at)
        if book is None or book.reported or not book.sent or not due:
            return None
        book.reported = True
        for old in [e for e in self._epochs if e < epoch]:
            del self._epochs[old]
        return self.scores(epoch)

    def targets_of(self, listed: Iterable[ProbeTarget]) -> list[ProbeTarget]:
        """The relays to probe of a directory listing: one per account, at most 256."""
        seen: dict[bytes, ProbeTarget] = {}
        for target in listed:
            seen.setdefault(target.account, target)
        return [seen[a] for a in sorted(seen)[:MAX_TARGETS]]
