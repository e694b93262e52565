"""The chat chain: identities, prekeys, relays, channels, ordering, receipts, reputation.

Theory of operation. Senders are Ed25519 keys with chat-chain fee accounts
(funded at genesis; fees are burned, because this chain has no validator
rewards to pay). Registration is the exception: a newcomer has no balance, so
``register_identity`` may pay no fee and costs a proof of work of
``pow_bits`` bits instead (see :mod:`._chat_identity`). Every other action is
taken by a registered identity's current key and costs at least ``min_fee``.

The handlers live in :mod:`._chat_identity`, :mod:`._chat_channels` and
:mod:`._chat_directory`; their module docstrings give the key schemes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from . import _bridge as bridge
from . import _chat_channels as channels
from . import _chat_directory as directory
from . import _chat_identity as identity
from ._bridge_headers import bridge_headers, seed_bridge
from ._state_app import ChainApp
from ._state_genesis import ParamSpec, build_state
from ._tx import MAX_AMOUNT

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from ._app import BlockContext
    from ._tx import Transaction

__all__ = ("CHAT_PARAMS", "ChatChainApp")

CHAT_PARAMS: Final[ParamSpec] = {
    "min_fee": (0, 0, MAX_AMOUNT),
    "pow_bits": (20, 0, 64),
    "recovery_delay_ms": (7 * 24 * 3600 * 1000, 0, 1 << 50),
}


class ChatChainApp(ChainApp):
    """The chat chain's state machine (an :class:`Application`)."""

    KIND = "chat"

    @classmethod
    def from_genesis(cls, genesis: bytes) -> ChatChainApp:
        """Build the state at height 0 from a canonical genesis document.

        Raises:
            ChainArgumentError: The document is malformed.
        """
        return cls(build_state(genesis, "chat", CHAT_PARAMS, {"bridge"}, seed_bridge))

    def _minimum_fee(self, tx: Transaction) -> int:
        return 0 if tx.kind == "register_identity" else super()._minimum_fee(tx)

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
            "create_channel": lambda c, tx: channels.create_channel(s, tx),
            "set_role": lambda c, tx: channels.set_role(s, tx),
            "transfer_channel": lambda c, tx: channels.transfer_channel(s, tx),
            "commit_order": lambda c, tx: channels.commit_order(s, c, tx),
            # Cross-chain actions (see ._bridge): the chat side decides.
            "bridge_headers": lambda c, tx: bridge_headers(s, tx),
            "xclaim": lambda c, tx: bridge.xclaim(s, self.chain_id, c, tx),
        }
