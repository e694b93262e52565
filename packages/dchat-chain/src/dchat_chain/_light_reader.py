"""Chain answers a user can trust without running a validator: a sans-IO light reader.

Theory of operation. :class:`LightReader` holds a :class:`LightClient` anchored
at a chain's genesis validator set (kept between runs as
:mod:`._light_state` bytes). To read a key it asks the node for the value with
its Merkle proof; the answer names the height ``h`` of the state it speaks of
and the header ``h + 1`` whose app hash proves it. The reader then asks, from
``GET /v1/chain/headers``, for every header it has not verified up to
``h + 1``, checks each by its commit certificate against the set its parent
announced (taking over new sets where a header changes them), and accepts the
value only if the proof holds under the app hash of that verified header.

So a node can refuse to answer, or answer with an old state, but it cannot make
the reader accept a value the chain's validators did not certify. An answer
older than the newest verified header is a :class:`StaleAnswerError` at once;
the shell may ask again after a pause (another node may lag a block). The
next-nonce hint and decoded records beside the proven value are conveniences
the reader does not vouch for; callers use the proven value.

The reader does no I/O. One read is a :class:`LightRead`, driven by the shell::

    read = reader.read(path, key)
    while (request := read.next_request()) is not None:
        read.receive(get_json(request))  # the shell's GET of an API path
    doc, value, height = read.result()

:meth:`LightReader.catch_up` is the same loop without the answer: headers
only, up to a given height.

Headers verified before a refusal stay verified; the shell persists
:meth:`LightReader.to_bytes` when :attr:`LightReader.height` moved.

Errors: :class:`ChainAnswerError` (and :class:`StaleAnswerError`) for answers
that are malformed or do not fit, the light client's own types for forged
certificates, foreign or unlinked headers, untrusted sets and failing proofs,
:class:`LightStateError` for stored state or a genesis that cannot anchor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from dchat_core import DchatError

from ._errors import ChainAnswerError, ChainStateError, LightStateError, StaleAnswerError
from ._indexed_app import IndexedApp
from ._light import InvalidStateProofError, LightClient
from ._light_answers import parse_headers, parse_proof
from ._light_state import decode_light_state, encode_light_state

if TYPE_CHECKING:
    from ._validators import ValidatorSet

__all__ = ("HEADERS_PAGE", "LightRead", "LightReader", "genesis_anchor")

HEADERS_PAGE: Final = 64  # headers asked for per request


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


class LightReader:
    """Verified reads of one chain through an untrusted node API.

    Args:
        client: The light client (restored or fresh).
        anchor: The hash of the genesis set the client started from.
    """

    def __init__(self, client: LightClient, anchor: bytes) -> None:
        self.client, self.anchor = client, anchor

    @classmethod
    def restore(
        cls, stored: bytes | None, genesis: bytes | None, *, name: str = "the light state"
    ) -> LightReader:
        """The reader of ``stored`` state, or a new one anchored at ``genesis``.

        Args:
            stored: The bytes :meth:`to_bytes` gave before, or None.
            genesis: The chain's genesis document, or None to trust ``stored``.
            name: What to call the state in error messages (a file name).

        Raises:
            LightStateError: ``stored`` is corrupt or anchored at another genesis
                than ``genesis``, or there is neither.
        """
        anchor_set = None if genesis is None else genesis_anchor(genesis)
        if stored is not None:
            client, anchor = decode_light_state(stored)
            if anchor_set is not None and (
                anchor_set[0] != client.chain_id or anchor_set[1].hash() != anchor
            ):
                raise LightStateError(f"{name} was started from another genesis")
            return cls(client, anchor)
        if anchor_set is None:
            raise LightStateError("no light-client state yet: give the chain's genesis file")
        chain_id, validators = anchor_set
        return cls(LightClient(chain_id, validators), validators.hash())

    @property
    def height(self) -> int:
        """The newest verified header's height (0: none yet)."""
        return self.client.height

    def to_bytes(self) -> bytes:
        """The verified state, for :meth:`restore`."""
        return encode_light_state(self.client, self.anchor)

    def read(self, path: str, key: bytes) -> LightRead:
        """A verified read of ``key`` from the proven answer at API ``path``."""
        return LightRead(self.client, path, key)

    def catch_up(self, height: int) -> LightRead:
        """Verify headers up to ``height``: a :class:`LightRead` without an answer."""
        return LightRead(self.client, "", b"", up_to=height)


class LightRead:
    """One verified read: the answer, then the headers that prove it.

    Args:
        client: The light client (headers it verifies stay verified).
        path: The API path of a proven answer for ``key``.
        key: The state key the answer must prove.
        up_to: Instead of an answer, verify headers up to this height only
            (``path`` and ``key`` are not used; there is no :meth:`result`).
    """

    def __init__(
        self, client: LightClient, path: str, key: bytes, *, up_to: int | None = None
    ) -> None:
        self._client, self._path, self._key = client, path, key
        self._doc: Any = None
        self._answer: tuple[int, bytes, bytes | None, bytes] | None = None
        self._target = up_to  # the header to verify up to, once known
        self._done = up_to is not None and client.height >= up_to

    def _page(self) -> tuple[int, int]:
        assert self._target is not None
        return self._client.height + 1, min(HEADERS_PAGE, self._target - self._client.height)

    def next_request(self) -> str | None:
        """The API path to GET next, or None when the read is complete."""
        if self._done:
            return None
        if self._target is None:
            return self._path
        start, want = self._page()
        return f"/v1/chain/headers?from={start}&limit={want}"

    def receive(self, doc: Any) -> None:
        """Take the decoded JSON answer to :meth:`next_request`.

        Raises:
            StaleAnswerError: The node answers for a state older than verified.
            ChainAnswerError: Malformed answer or headers, or a missing header.
            InvalidStateProofError: The proof or app hash does not match the header.
            LightClientError, InvalidCertificateError: A header does not verify.
            ChainStateError: The read is complete already.
        """
        if self._done:
            raise ChainStateError("the read is complete")
        if self._target is None:
            answer = parse_proof(doc)
            if answer[0] + 1 < self._client.height:
                raise StaleAnswerError(
                    f"the node answers for height {answer[0]}; header {self._client.height} "
                    "was verified already"
                )
            self._doc, self._answer, self._target = doc, answer, answer[0] + 1
        else:
            self._take_headers(doc)
        if self._client.height >= self._target:
            if self._answer is not None:
                self._finish(*self._answer)
            self._done = True

    def _take_headers(self, doc: Any) -> None:
        _, want = self._page()
        page = parse_headers(doc, want)
        if not page:
            raise ChainAnswerError(f"the node has no header {self._client.height + 1}")
        for header, cert, following in page:
            self._client.update(header, cert, following)

    def _finish(self, height: int, app_hash: bytes, value: bytes | None, proof: bytes) -> None:
        header = self._client.header(height + 1)
        if header is None:  # the client keeps every header it verified in this process
            raise StaleAnswerError(f"header {height + 1} is no longer remembered")
        if header.app_hash != app_hash:
            raise InvalidStateProofError("the answer's app hash is not the certified one")
        self._client.verify_state(header, self._key, value, proof)

    def result(self) -> tuple[Any, bytes | None, int]:
        """The answer, the proven value (None: absent) and the height of its state.

        Raises:
            ChainStateError: The read is not complete, or was a catch-up.
        """
        if not self._done or self._answer is None:
            raise ChainStateError("the read is not complete")
        return self._doc, self._answer[2], self._answer[0]
