"""A wallet's scan of committed blocks for its stealth payments (sans-IO).

Theory of operation. :class:`StealthScan` walks the chain block by block with
a light client of its own (anchored at the genesis set, like the wallet's, and
kept with the scan). For each header it fetches from ``GET
/v1/chain/headers`` it checks the commit certificate (:meth:`LightClient.check_header`);
a header with transactions is taken only once ``GET
/v1/chain/blocks/{h}/txs`` answered with transactions whose Merkle root is the
header's ``txs_root``. So the node can withhold blocks but cannot hide a
transaction of a block it serves, nor invent one. Every ``transfer`` carrying a
``stealth`` memo is then offered to :meth:`StealthKeys.tweak_for`; the ones
that are ours are kept as :class:`StealthFind`. The scan's height only moves
past a block once its transactions are scanned, so a scan stopped anywhere
resumes without missing one.

A find says a transfer *was committed* to one of our accounts, not that it
succeeded: balances come from proven account reads (the wallet's light reader).

One scan serves several recipients at once (a user node's identity and its
burners): it holds a *keyring*, owner label -> :class:`StealthKeys`, and each
stealth transfer of a block is offered to every key of the ring in the same
pass, so adding a burner costs one scalar multiplication per stealth transfer,
never a second walk over the chain. A find carries its owner's label (``b""``
for the wallet's own keys). Restoring a scan with a ring that lacks an owner
(a burner destroyed since) drops that owner's finds with its keys. An owner
added later needs no rescan: its meta-address did not exist before, so no
block already scanned can pay it.

The object does no I/O; the shell loops::

    scan.scan_to(height)
    while (request := scan.next_request()) is not None:
        scan.receive(get_json(request))
    store(scan.to_bytes())

A shell that scans in the background waits :func:`scan_delay` between rounds:
the period drawn anew each time, so the node it asks sees no fixed rhythm.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from dchat_core import DchatError, DecodeLimits, Fields, canonical_decode, canonical_encode

from ._block_merkle import EMPTY_ROOT, txs_root
from ._errors import ChainAnswerError, ChainArgumentError, ChainStateError, LightStateError
from ._light_answers import parse_headers
from ._light_reader import HEADERS_PAGE, genesis_anchor
from ._light_state import MAX_LIGHT_STATE_SIZE, decode_light_state, encode_light_state
from ._stealth import STEALTH_MEMO_SIZE, StealthFormatError, StealthMemo
from ._tx import Transaction
from ._tx_errors import MalformedTransactionError

if TYPE_CHECKING:
    import random
    from collections.abc import Iterable

    from ._block import BlockHeader
    from ._block_commit import CommitCertificate
    from ._light import LightClient
    from ._stealth import StealthKeys
    from ._validators import ValidatorSet

__all__ = (
    "MAX_STEALTH_FINDS",
    "MAX_STEALTH_OWNERS",
    "SCAN_JITTER",
    "StealthFind",
    "StealthScan",
    "scan_delay",
    "stealth_transfers",
)

MAX_STEALTH_FINDS: Final = 100_000
MAX_STEALTH_OWNERS: Final = 256
"""Most keys one scan checks (an identity and its burners)."""
_MAX_OWNER: Final = 64  # bytes of an owner label
_MAX_TXS_ANSWER: Final = 8 << 20  # hex of a 4 MiB block
_LIMITS: Final = DecodeLimits(
    max_size=MAX_LIGHT_STATE_SIZE + 64 * MAX_STEALTH_FINDS,
    max_depth=3,
    max_items=5 * MAX_STEALTH_FINDS + 8,
)

_STATE_FIELDS: Final = frozenset({"v", "light", "found"})

_Item = tuple["BlockHeader", "CommitCertificate", "ValidatorSet | None"]


@dataclass(frozen=True, slots=True)
class StealthFind:
    """A committed stealth transfer to one of our one-time accounts.

    Attributes:
        account: The one-time account (Ed25519 public key).
        memo: The transfer's memo (derives the account's key with the spend key).
        height: The block that holds the transfer.
        amount: The amount the transfer names (its success is the chain's word:
            read the account's proven balance).
        owner: Whose keys found it: the keyring's label (``b""``: the wallet's own).
    """

    account: bytes
    memo: StealthMemo
    height: int
    amount: int
    owner: bytes = b""


def stealth_transfers(raw_txs: Iterable[bytes]) -> list[tuple[bytes, StealthMemo, int]]:
    """(account, memo, amount) of every well-formed stealth ``transfer`` in ``raw_txs``."""
    out = []
    for raw in raw_txs:
        try:
            tx = Transaction.decode(raw)
            if tx.kind != "transfer" or "stealth" not in tx.body:
                continue
            body = Fields(tx.body, "transfer", frozenset({"to", "amount", "ref", "stealth"}))
            memo = StealthMemo.from_bytes(body.get_bytes("stealth", size=STEALTH_MEMO_SIZE))
            out.append((body.get_bytes("to", size=32), memo, body.get_int("amount", lo=1)))
        except (MalformedTransactionError, StealthFormatError, DchatError):
            continue  # not a transfer anyone can find: skipped, never fatal
    return out


Keyring = Mapping[bytes, "StealthKeys"]
"""Owner label (at most 64 bytes; ``b""`` for the wallet's own) -> its stealth keys."""


def _ring(keys: StealthKeys | Keyring) -> dict[bytes, StealthKeys]:
    ring = dict(keys) if isinstance(keys, Mapping) else {b"": keys}
    if len(ring) > MAX_STEALTH_OWNERS or any(len(o) > _MAX_OWNER for o in ring):
        raise ChainArgumentError(f"a stealth scan checks at most {MAX_STEALTH_OWNERS} short labels")
    return ring


class StealthScan:
    """A resumable, verified scan of committed blocks for stealth payments to a keyring.

    Args:
        client: The scan's own light client (its height: the last block scanned).
        anchor: The hash of the genesis set ``client`` started from.
        keys: The wallet's stealth keys, or a keyring (owner label -> keys);
            only the scan secrets are used to find.
        finds: What earlier rounds found (those of owners not in the ring are dropped).
    """

    def __init__(
        self,
        client: LightClient,
        anchor: bytes,
        keys: StealthKeys | Keyring,
        finds: Iterable[StealthFind] = (),
    ) -> None:
        self.client, self._anchor, self.keyring = client, anchor, _ring(keys)
        self._finds = {f.account: f for f in finds if f.owner in self.keyring}
        self._target = client.height
        self._page: list[_Item] = []
        self._waiting: _Item | None = None  # a header whose transactions were asked for
        self.transfers_checked = 0

    @classmethod
    def restore(
        cls, stored: bytes | None, genesis: bytes | None, keys: StealthKeys | Keyring
    ) -> StealthScan:
        """The scan kept in ``stored``, or a new one from ``genesis`` (block 1 on).

        Raises:
            LightStateError: ``stored`` is corrupt, or there is neither.
        """
        if stored is None:
            if genesis is None:
                raise LightStateError("no stealth scan yet: the chain's genesis is needed")
            from ._light import LightClient

            chain_id, validators = genesis_anchor(genesis)
            return cls(LightClient(chain_id, validators), validators.hash(), keys)
        try:
            f = Fields(canonical_decode(stored, _LIMITS), "stealth scan", _STATE_FIELDS)
            if f.get_int("v") != 1:
                raise LightStateError("unsupported stealth scan version")
            client, anchor = decode_light_state(f.get_bytes("light", max_size=MAX_LIGHT_STATE_SIZE))
            finds = [_decode_find(item) for item in f.get_list("found", max_len=MAX_STEALTH_FINDS)]
        except (DchatError, ValueError) as exc:
            if isinstance(exc, LightStateError):
                raise
            raise LightStateError(f"the stealth scan state is corrupt: {exc}") from None
        return cls(client, anchor, keys, finds)

    def to_bytes(self) -> bytes:
        """The scan's state (the light client at the last scanned block, the finds)."""
        found = [_encode_find(f) for f in self._finds.values()]
        light = encode_light_state(self.client, self._anchor)
        return canonical_encode({"v": 1, "light": light, "found": found})

    @property
    def height(self) -> int:
        """The last block scanned."""
        return self.client.height

    @property
    def finds(self) -> list[StealthFind]:
        """Our stealth transfers found so far, oldest first."""
        return sorted(self._finds.values(), key=lambda f: f.height)

    def finds_of(self, owner: bytes) -> list[StealthFind]:
        """The finds of one owner of the keyring, oldest first."""
        return [f for f in self.finds if f.owner == owner]

    def scan_to(self, height: int) -> None:
        """Scan on until block ``height`` (a target below the scanned height does nothing)."""
        self._target = max(self._target, height)

    def next_request(self) -> str | None:
        """The API path to GET next, or None when the scan reached its target."""
        while self._waiting is None and self._page:
            self._take(self._page.pop(0))
        if self._waiting is not None:
            return f"/v1/chain/blocks/{self._waiting[0].height}/txs"
        if self.client.height >= self._target:
            return None
        want = min(HEADERS_PAGE, self._target - self.client.height)
        return f"/v1/chain/headers?from={self.client.height + 1}&limit={want}"

    def _take(self, item: _Item) -> None:
        header, cert, following = item
        self.client.check_header(header, cert, following)
        if header.txs_root == EMPTY_ROOT:
            self.client.update(header, cert, following)
        else:
            self._waiting = item

    def receive(self, doc: Any) -> None:
        """Take the decoded JSON answer to :meth:`next_request`.

        Raises:
            ChainAnswerError: Malformed answer; transactions that are not the block's.
            LightClientError, InvalidCertificateError: A header does not verify.
            ChainStateError: Nothing was asked.
        """
        if self._waiting is not None:
            self._take_block(self._waiting, doc)
            return
        if self.client.height >= self._target or self._page:
            raise ChainStateError("no request is open")
        want = min(HEADERS_PAGE, self._target - self.client.height)
        page = parse_headers(doc, want)
        if not page:
            raise ChainAnswerError(f"the node has no header {self.client.height + 1}")
        self._page = page

    def _take_block(self, item: _Item, doc: Any) -> None:
        header = item[0]
        raws = _parse_txs(doc, header.height)
        if txs_root(raws) != header.txs_root:
            raise ChainAnswerError("the transactions are not the certified block's")
        for account, memo, amount in stealth_transfers(raws):
            self.transfers_checked += 1
            owner = None if account in self._finds else self._owner(account, memo)
            if owner is not None:
                if len(self._finds) >= MAX_STEALTH_FINDS:
                    raise ChainStateError("too many stealth payments kept")
                self._finds[account] = StealthFind(account, memo, header.height, amount, owner)
        self.client.update(*item)
        self._waiting = None

    def _owner(self, account: bytes, memo: StealthMemo) -> bytes | None:
        """The owner whose keys find ``account`` (every key of the ring, one transfer)."""
        for owner, keys in self.keyring.items():
            if keys.owns(account, memo):
                return owner
        return None


def _parse_txs(doc: Any, height: int) -> list[bytes]:
    if not isinstance(doc, dict) or doc.get("height") != height:
        raise ChainAnswerError(f"the answer is not block {height}'s transactions")
    items = doc.get("txs")
    size = sum(len(t) for t in items if isinstance(t, str)) if isinstance(items, list) else 0
    if not isinstance(items, list) or size > _MAX_TXS_ANSWER:
        raise ChainAnswerError("a block's transactions are a bounded list")
    try:
        return [bytes.fromhex(t) for t in items]
    except (TypeError, ValueError):
        raise ChainAnswerError("a block's transactions are hex") from None


def _encode_find(f: StealthFind) -> list[object]:
    row: list[object] = [f.account, f.memo.to_bytes(), f.height, f.amount]
    return [*row, f.owner] if f.owner else row  # the wallet's own: as before owners


def _decode_find(item: Any) -> StealthFind:
    if not isinstance(item, list) or len(item) not in (4, 5):
        raise LightStateError("a stealth find is [account, memo, height, amount, owner?]")
    account, memo, height, amount = item[:4]
    owner = item[4] if len(item) == 5 else b""
    if len(item) == 5 and not (isinstance(owner, bytes) and 0 < len(owner) <= _MAX_OWNER):
        raise LightStateError("a stealth find's owner is a label of 1 to 64 bytes")
    if not isinstance(account, bytes) or len(account) != 32:
        raise LightStateError("a stealth find's account is 32 bytes")
    if not all(isinstance(n, int) and n >= 0 for n in (height, amount)):
        raise LightStateError("a stealth find's height and amount are counts")
    return StealthFind(account, StealthMemo.from_bytes(memo), height, amount, owner)


SCAN_JITTER: Final = 0.5
"""How far a background scan's wait strays from the period, as a fraction of it."""


def scan_delay(period: float, rng: random.Random) -> float:
    """Seconds to wait before the next background scan: uniform in
    ``period * (1 - SCAN_JITTER)`` .. ``period * (1 + SCAN_JITTER)`` (mean ``period``).

    Raises:
        ChainArgumentError: ``period`` is not positive.
    """
    if not period > 0:
        raise ChainArgumentError("a scan period is positive")
    return period * rng.uniform(1 - SCAN_JITTER, 1 + SCAN_JITTER)
