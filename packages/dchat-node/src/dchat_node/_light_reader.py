"""Chain answers a user can trust without running a validator: a light client over the API.

Theory of operation. :class:`LightReader` holds a :class:`dchat_chain.LightClient`
anchored at a chain's genesis validator set and persisted between commands
(:mod:`._light_state`). To read a key it asks the node for the value with its
Merkle proof; the answer names the height ``h`` of the state it speaks of and
the header ``h + 1`` whose app hash proves it. The reader then fetches, from
``GET /v1/chain/headers``, every header it has not verified up to ``h + 1``,
checks each by its commit certificate against the set its parent announced
(taking over new sets where a header changes them), and accepts the value only
if the proof holds under the app hash of that verified header.

So a node can refuse to answer, or answer with an old state, but it cannot make
the reader accept a value the chain's validators did not certify. An answer
older than the newest verified header is retried for a few seconds (another
node may lag a block) and then refused as stale. The next-nonce hint and
decoded records beside the proven value are conveniences the reader does not
vouch for; callers use the proven value.

Errors: :class:`ChainAnswerError` (and :class:`StaleAnswerError`) for answers
that are malformed or do not fit, the light client's own types from
:mod:`dchat_chain` for forged certificates, foreign or unlinked headers,
untrusted sets and failing proofs, :class:`LightStateError` for the state file.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any, Final

from dchat_chain import BlockHeader, CommitCertificate, LightClient, ValidatorSet
from dchat_chain.lowlevel import InvalidStateProofError
from dchat_core import DchatError, DecodeLimits, canonical_decode, canonical_encode

from ._errors import ChainAnswerError, LightStateError, StaleAnswerError
from ._light_state import read_state, write_state
from ._validator_app import IndexedApp

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

__all__ = ("PAGE", "LightReader", "genesis_anchor", "parse_headers", "parse_proof", "state_path")

PAGE: Final = 64
STALE_WAIT: Final = 5.0
_HEADER_LIMITS: Final = DecodeLimits(max_size=4096, max_depth=2, max_items=64)
_ITEM_KEYS: Final = frozenset({"height", "header", "certificate", "next_validators"})
_HEX: Final = re.compile(r"(?:[0-9a-f]{2})*")


def genesis_anchor(genesis: bytes) -> tuple[str, ValidatorSet]:
    """The chain id and validator set a genesis document starts from.

    Raises:
        LightStateError: Not a genesis document dchat can run.
    """
    try:
        state = IndexedApp(genesis).genesis_state()
    except DchatError as exc:
        raise LightStateError(f"not a usable genesis: {exc}") from None
    return state.chain_id, state.validators


def state_path(directory: Path, chain_id: str) -> Path:
    """Where the light state of ``chain_id`` lives in ``directory``."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", chain_id)
    return directory / f"{safe}.light"


# -- strict parsing of the node's answers ---------------------------------------------


def _hex(value: Any, what: str, max_bytes: int) -> bytes:
    if not isinstance(value, str) or len(value) > 2 * max_bytes or not _HEX.fullmatch(value):
        raise ChainAnswerError(f"{what} is not hex of at most {max_bytes} bytes")
    return bytes.fromhex(value)


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 53:
        raise ChainAnswerError(f"{what} is not a height")
    return value


def _header(raw: bytes) -> BlockHeader:
    try:
        header = BlockHeader.from_obj(canonical_decode(raw, _HEADER_LIMITS))
    except DchatError as exc:
        raise ChainAnswerError(f"malformed header: {exc}") from None
    if canonical_encode(header.to_obj()) != raw:
        raise ChainAnswerError("header is not canonically encoded")
    return header


def parse_headers(
    doc: Any, limit: int
) -> list[tuple[BlockHeader, CommitCertificate, ValidatorSet | None]]:
    """The items of a ``/v1/chain/headers`` answer (structure only; nothing verified).

    Raises:
        ChainAnswerError: The answer is malformed or longer than ``limit``.
    """
    items = doc.get("headers") if isinstance(doc, dict) else None
    if not isinstance(items, list) or len(items) > limit:
        raise ChainAnswerError(f"a headers page is a list of at most {limit} items")
    out = []
    for item in items:
        if not isinstance(item, dict) or set(item) != _ITEM_KEYS:
            raise ChainAnswerError("a headers item has unexpected fields")
        header = _header(_hex(item["header"], "header", 4096))
        if _int(item["height"], "height") != header.height:
            raise ChainAnswerError("a headers item names another height than its header")
        try:
            cert = CommitCertificate.from_bytes(_hex(item["certificate"], "certificate", 1024))
            following = None
            if item["next_validators"] is not None:
                raw_set = _hex(item["next_validators"], "next_validators", 1 << 20)
                following = ValidatorSet.from_bytes(raw_set)  # proofs of possession checked
        except ChainAnswerError:
            raise
        except DchatError as exc:
            raise ChainAnswerError(f"malformed headers item: {exc}") from None
        out.append((header, cert, following))
    return out


def parse_proof(doc: Any) -> tuple[int, bytes, bytes | None, bytes]:
    """(state height, app hash, value, proof) of a proven answer (structure only).

    Raises:
        ChainAnswerError: The answer is malformed or inconsistent.
    """
    if not isinstance(doc, dict):
        raise ChainAnswerError("the answer is not an object")
    height = _int(doc.get("height"), "height")
    if doc.get("header_height") != height + 1:
        raise ChainAnswerError("the answer's state is not the one header height + 1 proves")
    app_hash = _hex(doc.get("app_hash"), "app_hash", 64)
    raw = doc.get("value")
    value = None if raw is None else _hex(raw, "value", 1 << 20)
    return height, app_hash, value, _hex(doc.get("proof"), "proof", 16 << 10)


# -- the reader -----------------------------------------------------------------------


class LightReader:
    """Verified reads of one chain through an untrusted node API.

    Args:
        fetch: GET a path of the node API, returning the decoded JSON.
        path: The state file.
        client: The light client (restored or fresh).
        anchor: The hash of the genesis set the client started from.
        stale_wait: How long a stale answer is retried before it is refused.
    """

    def __init__(
        self,
        fetch: Callable[[str], Any],
        path: Path,
        client: LightClient,
        anchor: bytes,
        *,
        stale_wait: float = STALE_WAIT,
    ) -> None:
        self._fetch, self._path, self.client, self._anchor = fetch, path, client, anchor
        self._stale_wait = stale_wait

    @classmethod
    def open(
        cls,
        fetch: Callable[[str], Any],
        path: Path,
        genesis: bytes | None,
        *,
        stale_wait: float = STALE_WAIT,
    ) -> LightReader:
        """The reader of the state at ``path``, or a new one anchored at ``genesis``.

        Raises:
            LightStateError: The file is corrupt; it is anchored at another
                genesis than ``genesis``; or there is neither file nor genesis.
        """
        anchor_set = None if genesis is None else genesis_anchor(genesis)
        stored = read_state(path)
        if stored is not None:
            client, anchor = stored
            if anchor_set is not None and (
                anchor_set[0] != client.chain_id or anchor_set[1].hash() != anchor
            ):
                raise LightStateError(f"{path.name} was started from another genesis")
            return cls(fetch, path, client, anchor, stale_wait=stale_wait)
        if anchor_set is None:
            raise LightStateError("no light-client state yet: give the chain's genesis file")
        chain_id, validators = anchor_set
        client = LightClient(chain_id, validators)
        return cls(fetch, path, client, validators.hash(), stale_wait=stale_wait)

    def save(self) -> None:
        """Persist the verified state (atomic)."""
        write_state(self._path, self.client, self._anchor)

    def catch_up(self, height: int) -> int:
        """Verify headers until ``height``; returns how many were verified.

        Whatever verified before a refusal is kept and saved.
        """
        start = self.client.height
        try:
            while self.client.height < height:
                want = min(PAGE, height - self.client.height)
                doc = self._fetch(f"/v1/chain/headers?from={self.client.height + 1}&limit={want}")
                page = parse_headers(doc, want)
                if not page:
                    raise ChainAnswerError(f"the node has no header {self.client.height + 1}")
                for header, cert, following in page:
                    self.client.update(header, cert, following)
        finally:
            if self.client.height != start:
                self.save()
        return self.client.height - start

    def read(self, path: str, key: bytes) -> tuple[dict[str, Any], bytes | None, int]:
        """GET ``path`` (a proven answer for ``key``) and verify it.

        Returns:
            The answer, the proven value (None: absent) and the height of the state.

        Raises:
            StaleAnswerError: The node kept answering for an older state.
            ChainAnswerError: Malformed answer or headers.
            InvalidStateProofError: The proof or app hash does not match the header.
            LightClientError, InvalidCertificateError: A header does not verify.
        """
        deadline = time.monotonic() + self._stale_wait
        while True:
            doc = self._fetch(path)
            height, app_hash, value, proof = parse_proof(doc)
            if height + 1 >= self.client.height:
                break
            if time.monotonic() >= deadline:
                raise StaleAnswerError(
                    f"the node answers for height {height}; header {self.client.height} "
                    "was verified already"
                )
            time.sleep(0.2)
        self.catch_up(height + 1)
        header = self.client.header(height + 1)
        if header is None:  # the client keeps every header it verified in this process
            raise StaleAnswerError(f"header {height + 1} is no longer remembered")
        if header.app_hash != app_hash:
            raise InvalidStateProofError("the answer's app hash is not the certified one")
        self.client.verify_state(header, key, value, proof)
        return doc, value, height
