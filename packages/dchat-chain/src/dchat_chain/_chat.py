"""The chat chain: identities, prekeys, relays, channels, ordering, receipts, reputation.

Theory of operation. Senders are Ed25519 keys with chat-chain fee accounts
(funded at genesis; fees are burned, because this chain has no validator
rewards to pay). Registration is the exception: a newcomer has no balance, so
``register_identity`` may pay no fee and costs a proof of work of
``pow_bits`` bits instead (see :mod:`._chat_identity`). Taking or renewing a
public handle likewise costs work (``handle_pow_bits``, :mod:`._chat_handles`)
and releasing one is free. Every other action is taken by a registered
identity's current key and costs at least ``min_fee``.

The handlers live in :mod:`._chat_identity`, :mod:`._chat_channels`,
:mod:`._chat_directory` and :mod:`._chat_handles`; their module docstrings
give the key schemes.

Validators. The chat chain has no stake of its own: its validator set is fixed
by the genesis (optional ``"validators": [[account key(32), bls key(48), proof
of possession(96), power], ...]``, each proof checked), stored at ``chatval``
and handed to the engine by :meth:`ChatChainApp.initial_validators`; the chain
never changes it. A genesis without validators still builds (a light client
or a test can run the state machine without consensus).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from dchat_core import DchatError, DecodeError
from dchat_crypto import BlsPublicKey, BlsSignature
from dchat_crypto.hazmat import bls_verify_possession

from . import _bridge as bridge
from . import _chat_channels as channels
from . import _chat_directory as directory
from . import _chat_handles as handles
from . import _chat_identity as identity
from ._app import ValidatorUpdate
from ._bridge_headers import bridge_headers, seed_bridge
from ._currency_staking import MAX_POWER, validator_id_of
from ._errors import ChainArgumentError
from ._state_app import ChainApp
from ._state_genesis import ParamSpec, build_state
from ._state_records import get_record, put_record
from ._tx import MAX_AMOUNT

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from dchat_core import Fields

    from ._app import BlockContext
    from ._state import StateStore
    from ._tx import Transaction

__all__ = ("CHAT_PARAMS", "ChatChainApp")

CHAT_PARAMS: Final[ParamSpec] = {
    "min_fee": (0, 0, MAX_AMOUNT),
    "pow_bits": (20, 0, 64),
    "recovery_delay_ms": (7 * 24 * 3600 * 1000, 0, 1 << 50),
    "handle_pow_bits": (22, 0, 64),
    "handle_term": (30 * 24 * 3600, 1, 1 << 40),  # blocks: 30 days of 1 s blocks
}
# Paid in work, not fees (a newcomer has no tokens); release_handle can succeed once.
# A group's channel (create, roles, order commitments) is the registered identity's
# too: only a registered identity (work paid once) acts, only channel admins commit,
# and the chat chain has no transfers, so a user could never hold fees for them.
# Guardian recovery likewise: the guardians, the owner's veto and the recovered key
# are users' keys (only registered guardians request and approve, only the current
# key vetoes; an execution succeeds once per approved, unlocked request).
FREE_KINDS: Final = frozenset(
    {"register_identity", "register_handle", "renew_handle", "release_handle"}
    | {"create_channel", "set_role", "commit_order"}
    | {"set_guardians", "recovery_request", "recovery_approve", "recovery_veto"}
    | {"recovery_execute"}
)
VALIDATORS_KEY: Final = b"chatval"


def _validator_row(entry: Any) -> list[Any]:
    if not (isinstance(entry, list) and len(entry) == 4):
        raise DecodeError("validators must be [key, bls, pop, power] lists")
    key, bls, pop, power = entry
    if not (
        isinstance(key, bytes)
        and len(key) == 32
        and isinstance(power, int)
        and not isinstance(power, bool)
        and 0 < power <= MAX_POWER
    ):
        raise DecodeError("malformed genesis validator")
    try:
        bls_verify_possession(BlsPublicKey.from_bytes(bls), BlsSignature.from_bytes(pop))
    except (DchatError, TypeError):
        raise ChainArgumentError("genesis validator: BLS key lacks a valid proof") from None
    return [key, bls, pop, power]


def _seed(state: StateStore, params: dict[str, int], fields: Fields) -> int:
    seed_bridge(state, params, fields)
    raw = fields.get_list("validators", max_len=1024) if fields.has("validators") else []
    rows = sorted((_validator_row(e) for e in raw), key=lambda r: validator_id_of(r[0]))
    if len({r[0] for r in rows}) != len(rows):
        raise DecodeError("a genesis validator is listed twice")
    if rows:
        put_record(state, VALIDATORS_KEY, rows)
    return 0


class ChatChainApp(ChainApp):
    """The chat chain's state machine (an :class:`Application`)."""

    KIND = "chat"

    @classmethod
    def from_genesis(cls, genesis: bytes) -> ChatChainApp:
        """Build the state at height 0 from a canonical genesis document.

        Raises:
            ChainArgumentError: The document is malformed.
        """
        return cls(build_state(genesis, "chat", CHAT_PARAMS, {"bridge", "validators"}, _seed))

    def initial_validators(self) -> tuple[ValidatorUpdate, ...]:
        """The genesis validator set (the chat chain never changes it)."""
        rows: list[list[Any]] = get_record(self._state, VALIDATORS_KEY) or []
        return tuple(
            ValidatorUpdate(validator_id_of(key), bls, power, key, pop)
            for key, bls, pop, power in rows
        )

    def params(self) -> dict[str, Any]:
        """A copy of the chain's parameters."""
        return dict(self._params)

    def _minimum_fee(self, tx: Transaction) -> int:
        return 0 if tx.kind in FREE_KINDS else super()._minimum_fee(tx)

    def _handlers(self) -> Mapping[str, Callable[[BlockContext, Transaction], None]]:
        s, p = self._state, self._params
        return {
            "register_identity": lambda c, tx: identity.register_identity(
                s, self.chain_id, p["pow_bits"], tx
            ),
            "update_document": lambda c, tx: identity.update_document(s, tx),
            "set_guardians": lambda c, tx: identity.set_guardians(s, tx),
            "set_prekeys": lambda c, tx: identity.set_prekeys(s, tx),
            "recovery_request": lambda c, tx: identity.recovery_request(s, p, c, tx),
            "recovery_approve": lambda c, tx: identity.recovery_approve(s, tx),
            "recovery_veto": lambda c, tx: identity.recovery_veto(s, tx),
            "recovery_execute": lambda c, tx: identity.recovery_execute(s, c, tx),
            "register_relay": lambda c, tx: directory.register_relay(s, tx),
            "unregister_relay": lambda c, tx: directory.unregister_relay(s, tx),
            "receipt_batch": lambda c, tx: directory.receipt_batch(s, c, tx),
            "vouch": lambda c, tx: directory.vouch(s, tx),
            "register_handle": lambda c, tx: handles.register_handle(s, p, c, tx),
            "renew_handle": lambda c, tx: handles.renew_handle(s, p, c, tx),
            "transfer_handle": lambda c, tx: handles.transfer_handle(s, c, tx),
            "release_handle": lambda c, tx: handles.release_handle(s, c, tx),
            "create_channel": lambda c, tx: channels.create_channel(s, tx),
            "set_role": lambda c, tx: channels.set_role(s, tx),
            "transfer_channel": lambda c, tx: channels.transfer_channel(s, tx),
            "commit_order": lambda c, tx: channels.commit_order(s, c, tx),
            # Cross-chain actions (see ._bridge): the chat side decides.
            "bridge_headers": lambda c, tx: bridge_headers(s, tx),
            "xclaim": lambda c, tx: bridge.xclaim(s, self.chain_id, c, tx),
        }
