"""A receiver's check of a webhook delivery: signature, time window, one opaque refusal."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dchat_sdk import WebhookSignatureError, verify_webhook

# The example of docs/protocol.md, "Bot webhooks" (the node's dchat_messaging signs it so).
SECRET = "dchat-example-signing-secret-0123456789abcdef"
BODY = b'{"update_id":7,"message":{"text":"hi"}}'
HEADER = "t=1765000000,v1=5e7bb2b4d0906c3ad7408c602930b12b42e02f27bd5eb45a55d4637785ddb975"
AT = 1765000000


def test_the_documented_example_verifies() -> None:
    assert verify_webhook(BODY, HEADER, SECRET, now=AT + 10) == AT


@pytest.mark.parametrize(
    ("body", "header", "secret", "now"),
    [
        (BODY, HEADER, SECRET.replace("0", "1"), AT),  # a wrong secret
        (BODY + b" ", HEADER, SECRET, AT),  # a changed body
        (BODY, HEADER.replace("t=1765000000", "t=1765000001"), SECRET, AT),  # a changed time
        (BODY, HEADER, SECRET, AT + 301),  # replayed after the window
        (BODY, HEADER, SECRET, AT - 301),  # from the future
        (BODY, None, SECRET, AT),
        (BODY, "", SECRET, AT),
        (BODY, "v1=" + HEADER.split("v1=")[1], SECRET, AT),  # no time
        (BODY, "t=1765000000", SECRET, AT),  # no signature
        (BODY, "t=1765000000;v1=00", SECRET, AT),
        (BODY, HEADER, "", AT),
    ],
)
def test_anything_but_a_fresh_signature_by_the_secret_is_refused(
    body: bytes, header: str | None, secret: str, now: float
) -> None:
    with pytest.raises(WebhookSignatureError) as caught:
        verify_webhook(body, header, secret, now=now)
    assert str(caught.value) == "the webhook signature does not verify"  # says not which check
    assert isinstance(caught.value, ValueError)


def test_any_of_several_signatures_may_match_and_the_window_is_the_receivers() -> None:
    header = "t=1765000000,v1=" + "0" * 64 + "," + HEADER.split(",")[1]
    assert verify_webhook(BODY, header, SECRET, now=AT) == AT
    assert verify_webhook(BODY, HEADER, SECRET, now=AT + 3000, tolerance=3600) == AT


@given(body=st.binary(max_size=200), header=st.text(max_size=300))
def test_any_header_is_accepted_only_if_signed(body: bytes, header: str) -> None:
    try:
        at = verify_webhook(body, header, SECRET, now=AT)
    except WebhookSignatureError:
        return
    mac = hmac.new(SECRET.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    assert mac in header  # cannot happen by chance: only a real signature passes
