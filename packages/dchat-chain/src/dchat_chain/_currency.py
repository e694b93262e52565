"""The currency chain: accounts, transfers, fees, staking, slashing, relay rewards, channels.

Theory of operation. Every transaction pays its fee at admission (see
:mod:`._state_app`). Fees are summed per block; at block end ``burn_permille``
of them is burned and the rest goes to the block proposer's account (unknown
proposer: all burned). Nothing is ever minted: the genesis supply equals, at
every height, the sum of balances, bonded and unbonding stake, relay stake,
channel deposits, the relay pool and ``meta/burned``.

Block hooks: at block start, matured unbonding entries pay out and, at an
epoch's first block, relay rewards of the previous epoch are distributed and
its low median scores count towards relay faults (:mod:`._relay_faults`); at
block end, fees are settled and validator power changes become
:class:`ValidatorUpdate`\\ s for the engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from . import _bridge as bridge
from . import _channels as channels
from . import _currency_relays as relays
from . import _currency_staking as staking
from . import _relay_faults as faults
from ._bridge_headers import bridge_headers
from ._currency_genesis import build_currency_state
from ._payments import PAYMENT_REF_SIZE, PaymentRecord, record_payment
from ._state_app import ChainApp
from ._state_records import amount, body_fields, burn, credit, debit, get_record
from ._stealth import STEALTH_MEMO_SIZE

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from ._app import BlockContext, ValidatorUpdate
    from ._currency_staking import EvidenceVerifier
    from ._state import StateStore
    from ._tx import Transaction

__all__ = ("CurrencyChainApp",)

KIND: Final = "currency"


class CurrencyChainApp(ChainApp):
    """The currency chain's state machine (an :class:`Application`).

    Args:
        state: A state store holding a currency chain (see :meth:`from_genesis`).
        evidence_verifier: Checks ``slash`` evidence and names the offender;
            without one, ``slash`` transactions are rejected. Every validator
            must use the same verifier, or their states diverge.
    """

    KIND = KIND

    def __init__(
        self, state: StateStore, evidence_verifier: EvidenceVerifier | None = None
    ) -> None:
        self._verifier = evidence_verifier
        super().__init__(state)

    @classmethod
    def from_genesis(
        cls, genesis: bytes, evidence_verifier: EvidenceVerifier | None = None
    ) -> CurrencyChainApp:
        """Build the state at height 0 from a canonical genesis document.

        Raises:
            ChainArgumentError: The document is malformed or inconsistent.
        """
        return cls(build_currency_state(genesis), evidence_verifier)

    def initial_validators(self) -> tuple[ValidatorUpdate, ...]:
        """The validator set the genesis state defines (for the engine's first block)."""
        return staking.current_validators(self._state, self._params)

    def _handlers(self) -> Mapping[str, Callable[[BlockContext, Transaction], None]]:
        s, p = self._state, self._params
        return {
            "transfer": lambda c, tx: _transfer(s, tx),
            "stake": lambda c, tx: staking.stake(s, p, tx),
            "unbond": lambda c, tx: staking.unbond(s, p, c, tx),
            "slash": lambda c, tx: (
                faults.slash_relay(s, p, tx)
                if faults.is_relay_fault(tx)
                else staking.slash(s, p, self._verifier, tx)
            ),
            "relay_bond": lambda c, tx: relays.relay_bond(s, tx),
            "relay_unbond": lambda c, tx: relays.relay_unbond(s, p, c, tx),
            "fund_relay_pool": lambda c, tx: relays.fund_pool(s, tx),
            "uptime_report": lambda c, tx: relays.uptime_report(s, p, c, tx),
            "channel_open": lambda c, tx: channels.open_channel(s, self.chain_id, tx),
            "channel_coop_close": lambda c, tx: channels.coop_close(s, tx),
            "channel_close": lambda c, tx: channels.close(s, p, c, tx),
            "channel_dispute": lambda c, tx: channels.dispute(s, c, tx),
            "channel_settle": lambda c, tx: channels.settle(s, c, tx),
            # Cross-chain actions (see ._bridge): funds move on proofs of the chat side.
            "bridge_headers": lambda c, tx: bridge_headers(s, tx),
            "xlock": lambda c, tx: bridge.xlock(s, self.chain_id, tx),
            "xfinalize": lambda c, tx: bridge.xfinalize(s, tx),
            "xrefund": lambda c, tx: bridge.xrefund(s, tx),
        }

    def _begin_block(self, context: BlockContext) -> None:
        staking.release_unbonded(self._state, context.height)
        paid = relays.distribute_rewards(self._state, self._params, context)
        if paid is not None:
            faults.note_faults(self._state, self._params, *paid)

    def _settle_fees(self, context: BlockContext, total: int) -> None:
        burned = total * self._params["burn_permille"] // 1000
        operator = get_record(self._state, b"valid/" + context.proposer)
        if operator is None:
            burned = total
        else:
            credit(self._state, operator, total - burned)
        burn(self._state, burned)

    def _end_block(self, context: BlockContext) -> tuple[ValidatorUpdate, ...]:
        return staking.validator_updates(self._state, self._params)

    def params(self) -> dict[str, Any]:
        """A copy of the chain's parameters."""
        return dict(self._params)


def _transfer(state: StateStore, tx: Transaction) -> None:
    """``transfer {to, amount, [ref], [stealth]}``; a ``ref`` is recorded once (:mod:`._payments`).

    ``stealth`` is the 33-byte memo of a payment to a one-time account
    (:mod:`._stealth`): opaque to the chain, which only checks its size; wallets scan for it.
    """
    fields = body_fields(tx.body, "transfer", {"to", "amount", "ref", "stealth"})
    to, value = fields.get_bytes("to", size=32), amount(fields, "amount", lo=1)
    ref = fields.get_bytes("ref", size=PAYMENT_REF_SIZE) if fields.has("ref") else None
    if fields.has("stealth"):
        fields.get_bytes("stealth", size=STEALTH_MEMO_SIZE)
    debit(state, tx.sender, value)
    credit(state, to, value)
    if ref is not None:
        record_payment(state, ref, PaymentRecord(tx.sender, to, value))
