"""Paid blind tokens at a relay: offers, sales against payments, redemption for deposits."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dchat_core import NodeId
from dchat_crypto import SigningKey
from dchat_network import RelayClient, RelayLimits, RelayProtocolError, RelayServer
from dchat_network.lowlevel import (
    PowChallenge,
    PutAuthClient,
    RelayBusy,
    RelayPut,
    RelayStored,
    RelayStoredMany,
    TokenBuy,
    TokenIssued,
    TokenOffer,
    TokenOffered,
    TokenSaleError,
    TokenSettings,
    TokenShop,
    auth_paid,
    buy_request,
    decode_relay_message,
    encode_relay_message,
    purchase_ref,
)
from dchat_privacy import ExpiredTokenError, Token, TokenIssuerKey, UnknownKeyError
from dchat_privacy.lowlevel import TokenRequest
from dchat_storage import open_database
from dchat_testing import MemoryMailboxStore

NODE = SigningKey.generate()
RELAY = bytes(NodeId.derive(NODE.public_key.to_bytes()))
PAYEE = NODE.public_key.to_bytes()
DAY = 86400.0
NOW = 100 * DAY + 5.0
BOX = b"M" * 32


class MemoryTokenStore:
    """The relay database's token tables, in memory."""

    def __init__(self) -> None:
        self.keys: dict[int, bytes] = {}
        self.payments: set[bytes] = set()
        self.spent: dict[bytes, int] = {}

    def token_keys(self) -> list[tuple[int, bytes]]:
        return sorted(self.keys.items())

    def keep_token_key(self, epoch: int, key: bytes) -> None:
        self.keys[epoch] = key

    def use_payment(self, ref: bytes, now: float) -> bool:
        new = ref not in self.payments
        self.payments.add(ref)
        return new

    def spend_token(self, epoch: int, digest: bytes) -> bool:
        new = digest not in self.spent
        self.spent[digest] = epoch
        return new

    def spent_tokens(self, since_epoch: int) -> list[tuple[int, bytes]]:
        return [(e, d) for d, e in self.spent.items() if e >= since_epoch]

    def forget_tokens(self, before_epoch: int) -> None:
        self.keys = {e: k for e, k in self.keys.items() if e >= before_epoch}
        self.spent = {d: e for d, e in self.spent.items() if e >= before_epoch}


def new_shop(store: MemoryTokenStore | None = None, **changes: object) -> TokenShop:
    options = TokenSettings(enabled=True, price=3, max_per_payment=8)
    shop = TokenShop(
        dataclasses.replace(options, **changes),  # type: ignore[arg-type]
        NODE,
        RELAY,
        store or MemoryTokenStore(),
        NOW,
    )
    shop.load(NOW)
    return shop


def buy(shop: TokenShop, count: int, now: float = NOW) -> list[Token]:
    """Pay exactly and buy ``count`` tokens."""
    offer = TokenOffer.from_bytes(shop.offer(now).to_bytes(), PAYEE)
    request, pending = buy_request(offer.key, RELAY, count)
    return pending.finalize(shop.sell(request.to_bytes(), (PAYEE, 3 * count), now))


def new_server(shop: TokenShop, **limits: object) -> RelayServer:
    server = RelayServer(
        MemoryMailboxStore(),
        lambda env: env[:32],
        limits=RelayLimits(pow_free_relay=1.0, pow_free_mailbox=1.0, **limits),  # type: ignore[arg-type]
    )
    server.tokens = shop
    return server


def put(server: RelayServer, body: bytes, auth: bytes | None, now: float = NOW) -> object:
    request = encode_relay_message(RelayPut(1, BOX, BOX + body, auth))
    return server.handle(b"S" * 32, request, now).message


# -- the offer -------------------------------------------------------------------------------


def test_an_offer_verifies_against_its_relay_only_and_a_tampered_one_fails() -> None:
    shop = new_shop()
    data = shop.offer(NOW).to_bytes()
    offer = TokenOffer.from_bytes(data, PAYEE)
    assert (offer.payee, offer.price, offer.max_count) == (PAYEE, 3, 8)
    with pytest.raises(TokenSaleError) as other:
        TokenOffer.from_bytes(data, SigningKey.generate().public_key.to_bytes())
    assert other.value.code == "bad_offer"
    cheaper = dataclasses.replace(offer, price=1)
    with pytest.raises(TokenSaleError):
        TokenOffer.from_bytes(cheaper.to_bytes(), PAYEE)
    assert shop.offer(NOW + 60).key == offer.key  # one key per epoch
    assert shop.offer(NOW + DAY).key != offer.key


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_hostile_offers_raise_the_typed_error(data: bytes) -> None:
    with pytest.raises(TokenSaleError):
        TokenOffer.from_bytes(data, PAYEE)


# -- selling ---------------------------------------------------------------------------------


def test_a_paid_request_buys_tokens_that_verify_and_bind_this_relay() -> None:
    tokens = buy(new_shop(), 4)
    assert len(tokens) == 4
    assert {t.redeemer for t in tokens} == {RELAY}
    assert len({t.nonce for t in tokens}) == 4


def test_a_payment_buys_once_even_after_a_restart() -> None:
    """The same request sent again gets the same signatures: the same tokens, no more."""
    store = MemoryTokenStore()
    shop = new_shop(store)
    offer = shop.offer(NOW)
    request, pending = buy_request(offer.key, RELAY, 2)
    first = shop.sell(request.to_bytes(), (PAYEE, 6), NOW)
    assert shop.sell(request.to_bytes(), (PAYEE, 6), NOW) == first
    restarted = new_shop(store)
    assert restarted.sell(request.to_bytes(), (PAYEE, 6), NOW) == first
    assert (shop.counts["sold"], shop.counts["resent"], restarted.counts["sold"]) == (2, 2, 0)
    tokens = pending.finalize(first)
    assert [restarted.redeem(t.redemption(), NOW) for t in tokens] == [None, None]
    again = pending.finalize(restarted.sell(request.to_bytes(), (PAYEE, 6), NOW))
    assert [restarted.redeem(t.redemption(), NOW) for t in again] == ["spent", "spent"]


@pytest.mark.parametrize(
    ("paid", "count", "code"),
    [
        (None, 2, "unpaid"),
        ((PAYEE, 5), 2, "underpaid"),
        ((b"x" * 32, 6), 2, "wrong_payee"),
        ((PAYEE, 1000), 9, "too_many"),
    ],
)
def test_unpaid_underpaid_misdirected_and_oversized_purchases_are_refused(
    paid: tuple[bytes, int] | None, count: int, code: str
) -> None:
    shop = new_shop()
    request, _ = buy_request(shop.offer(NOW).key, RELAY, count)
    with pytest.raises(TokenSaleError) as refused:
        shop.sell(request.to_bytes(), paid, NOW)
    assert refused.value.code == code


def test_a_request_must_carry_the_reference_that_binds_it() -> None:
    shop = new_shop()
    request, _ = buy_request(shop.offer(NOW).key, RELAY, 2)
    other, _ = buy_request(shop.offer(NOW).key, RELAY, 2)
    swapped = TokenRequest(request.key_id, purchase_ref(other), request.blinded)
    with pytest.raises(TokenSaleError) as refused:
        shop.sell(swapped.to_bytes(), (PAYEE, 6), NOW)
    assert refused.value.code == "bad_request"


def test_a_request_for_an_old_epochs_key_or_an_unknown_key_is_refused() -> None:
    shop = new_shop()
    old_key = shop.offer(NOW).key
    request, _ = buy_request(old_key, RELAY, 1)
    # A purchase that crosses into the next epoch is still served (its payment is made).
    assert shop.sell(request.to_bytes(), (PAYEE, 3), NOW + DAY)
    request, _ = buy_request(old_key, RELAY, 1)
    with pytest.raises(ExpiredTokenError):
        shop.sell(request.to_bytes(), (PAYEE, 3), NOW + 2 * DAY)
    stranger = TokenIssuerKey.generate(int(NOW // DAY)).public
    request, _ = buy_request(stranger, RELAY, 1)
    with pytest.raises(UnknownKeyError):
        shop.sell(request.to_bytes(), (PAYEE, 3), NOW)


# -- redeeming -------------------------------------------------------------------------------


def test_a_token_is_redeemed_once_and_the_spent_set_survives_a_restart() -> None:
    store = MemoryTokenStore()
    shop = new_shop(store)
    first, second = buy(shop, 2)
    assert shop.redeem(first.redemption(), NOW) is None
    assert shop.redeem(first.redemption(), NOW) == "spent"
    restarted = new_shop(store)
    assert restarted.redeem(first.redemption(), NOW) == "spent"
    assert restarted.redeem(second.redemption(), NOW) is None
    assert restarted.counts == {"sold": 0, "resent": 0, "redeemed": 1, "refused": 1}


def test_forged_foreign_and_expired_tokens_are_refused_with_their_codes() -> None:
    shop = new_shop()
    (token,) = buy(shop, 1)
    forged = dataclasses.replace(token, signature=bytes(len(token.signature)))
    assert shop.redeem(forged.redemption(), NOW) == "bad_token"
    assert shop.redeem(b"\xa0", NOW) == "bad_token"
    other = new_shop()  # the same node key: a shop whose keys this one never made
    (foreign,) = buy(other, 1)
    assert shop.redeem(foreign.redemption(), NOW) == "unknown_key"
    assert shop.redeem(token.redemption(), NOW + 2 * DAY) == "expired"


def test_a_token_for_another_relay_does_not_pass() -> None:
    shop = new_shop()
    request, pending = buy_request(shop.offer(NOW).key, b"R" * 32, 1)
    (token,) = pending.finalize(shop.sell(request.to_bytes(), (PAYEE, 3), NOW))
    assert shop.redeem(token.redemption(), NOW) == "bad_token"


# -- deposits --------------------------------------------------------------------------------


def test_a_relay_under_load_takes_a_paid_token_in_place_of_work_once() -> None:
    shop = new_shop()
    server = new_server(shop)
    for i in range(4):
        put(server, b"load%d" % i, None)
    assert isinstance(put(server, b"stranger", None), RelayBusy)  # work is asked now
    token, spare = buy(shop, 2)
    assert isinstance(put(server, b"paid", auth_paid(token.redemption())), RelayStored)
    reply = server.handle(
        b"S" * 32,
        RelayClient().put_many([(BOX, BOX + b"again")], [auth_paid(token.redemption())]),
        NOW,
    )
    assert isinstance(reply.message, RelayStoredMany)
    assert reply.message.results == ("spent",)
    assert server.authorizer.counts["paid"] == 1
    assert server.authorizer.counts["work"] == 0
    del spare


def test_a_refused_paid_put_reaches_the_client_as_its_code() -> None:
    shop = new_shop()
    server = new_server(shop)
    (token,) = buy(shop, 1)
    forged = dataclasses.replace(token, signature=bytes(len(token.signature)))
    client = RelayClient()
    data = client.put(BOX, BOX + b"x", auth_paid(forged.redemption()))
    with pytest.raises(RelayProtocolError) as refused:
        client.receive(server.handle(b"S" * 32, data, NOW).data)
    assert refused.value.code == "bad_token"


def test_offer_and_buy_over_the_relay_protocol() -> None:
    shop = new_shop()
    server = new_server(shop)
    client = RelayClient()
    offered = client.receive(server.handle(b"S" * 32, client.token_offer(), NOW).data)
    assert isinstance(offered, TokenOffered)
    offer = TokenOffer.from_bytes(offered.offer, PAYEE)
    request, pending = buy_request(offer.key, RELAY, 3)
    buy_data = client.token_buy(request.to_bytes())
    message = decode_relay_message(buy_data)
    assert isinstance(message, TokenBuy)
    issued = client.receive(server.sell(message, (PAYEE, 9), NOW).data)
    assert isinstance(issued, TokenIssued)
    assert len(pending.finalize(issued.issuance)) == 3
    again = client.token_buy(request.to_bytes())
    resent = server.sell(decode_relay_message(again), (PAYEE, 9), NOW)  # type: ignore[arg-type]
    answer = client.receive(resent.data)  # a lost answer is asked for again: the same one
    assert isinstance(answer, TokenIssued)
    assert answer.issuance == issued.issuance


def test_a_relay_without_token_sales_answers_unsupported() -> None:
    server = RelayServer(MemoryMailboxStore(), lambda env: env[:32])
    client = RelayClient()
    with pytest.raises(RelayProtocolError) as refused:
        client.receive(server.handle(b"S" * 32, client.token_offer(), NOW).data)
    assert refused.value.code == "unsupported"


def test_the_sender_spends_a_paid_token_before_solving_work_and_never_twice() -> None:
    wallet = [b"redemption"]
    client = PutAuthClient()
    client.paid = lambda relay: wallet.pop() if relay == "r:1" and wallet else None
    challenge = PowChallenge(b"s" * 16, 8)
    assert client.retry(BOX, None, challenge, "r:1") == auth_paid(b"redemption")
    assert client.retry(BOX, auth_paid(b"redemption"), challenge, "r:1") == challenge
    assert client.retry(BOX, None, challenge, "r:2") == challenge


def test_over_the_relay_database_a_double_spend_after_a_restart_is_refused(
    tmp_path: Path,
) -> None:
    """The shop's state in the node's database: a restarted relay refuses a spent token."""
    path = tmp_path / "relay.db"
    db = open_database(path)
    shop = new_shop(db.tokens)  # type: ignore[arg-type]
    first, second = buy(shop, 2)
    server = new_server(shop)
    assert isinstance(put(server, b"one", auth_paid(first.redemption())), RelayStored)
    db.close()
    again = open_database(path)
    restarted = new_shop(again.tokens)  # type: ignore[arg-type]
    server = new_server(restarted)
    client = RelayClient()
    data = client.put(BOX, BOX + b"again", auth_paid(first.redemption()))
    with pytest.raises(RelayProtocolError) as refused:
        client.receive(server.handle(b"S" * 32, data, NOW).data)
    assert refused.value.code == "spent"
    assert isinstance(put(server, b"two", auth_paid(second.redemption())), RelayStored)
    # The issuer key came back from the database (sealed), so the offer is the same key.
    assert restarted.offer(NOW).key == shop.offer(NOW).key
    again.close()


SHOP = new_shop()
(GOOD,) = buy(SHOP, 1)


@settings(max_examples=80, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.binary(max_size=700)
    | st.builds(lambda b: GOOD.redemption()[:-1] + b, st.binary(min_size=1, max_size=1))
)
def test_hostile_redemptions_never_pass_and_get_a_typed_code(data: bytes) -> None:
    if data == GOOD.redemption():
        return
    assert SHOP.redeem(data, NOW) in {"bad_token", "unknown_key", "expired"}


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_hostile_purchases_are_typed_refusals(data: bytes) -> None:
    with pytest.raises(TokenSaleError) as refused:
        SHOP.sell(data, (PAYEE, 10**6), NOW)
    assert refused.value.code == "bad_request"


def test_the_buy_reference_example_of_the_protocol_document() -> None:
    request = TokenRequest(bytes(32), b"", (bytes(range(256)),))
    assert purchase_ref(request).hex() == (
        "9ba3e1dbcb34a6b025ae074b54ef95447900c8fca1e9635ea7987368ca580b5a"
    )
