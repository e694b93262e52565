"""Identity documents between real nodes: sent on contact add, refused when forged."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

import pytest

from dchat_identity import ContactCard, Identity, IdentityDocument
from dchat_sdk import ApiError, RemoteClient

if TYPE_CHECKING:
    from collections.abc import Callable

    from dchat_messaging import SealedEnvelope
    from dchat_node import NodeProcess


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_contacts_receive_documents_and_forgeries_are_refused(
    make_user: Callable[[str], NodeProcess],
    deposit: Callable[[SealedEnvelope], None],
    crafted: Callable[[Identity, ContactCard, str, bytes], SealedEnvelope],
    wait_until: Callable[..., None],
) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    with alice.client() as a, bob.client() as b:
        alice_id, bob_id = a.create_identity("alice"), b.create_identity("bob")
        own = a.document()
        assert (own["subject"], own["seq"], own["recovered"]) == (alice_id, 1, False)
        IdentityDocument.from_bytes(_unb64(own["document"]))  # signed and well formed

        with pytest.raises(ApiError) as missing:
            b.peer_document(alice_id)
        assert missing.value.status == 404
        b.add_contact("alice", a.card())  # Bob sends his document to Alice
        a.add_contact("bob", b.card())
        wait_until(lambda: _has(b, alice_id) and _has(a, bob_id))
        assert b.peer_document(alice_id)["document"] == own["document"]

        # Mallory sends Bob a genuine document of someone else: it must come from its key.
        victim = Identity.generate()
        doc = IdentityDocument.genesis(
            victim.signing_key, victim.encryption_key.public_key, now=1.8e9
        )
        bob_card = ContactCard.from_text(b.card())
        envelope = crafted(Identity.generate(), bob_card, "identity.document", doc.to_bytes())
        rejected = b.status()["rejected"]
        deposit(envelope)
        # Garbage in a well-authenticated control message is refused too.
        junk = crafted(Identity.generate(), bob_card, "identity.document", b"\x00junk")
        deposit(junk)
        wait_until(lambda: b.status()["rejected"] >= rejected + 2)
        with pytest.raises(ApiError):
            b.peer_document(str(ContactCard.issue(victim, name="v", relay="r:1").identity_id))
        with pytest.raises(ApiError) as bad:
            b.peer_document("not-an-id")
        assert bad.value.status == 400
        # Bob's node still works after the hostile input.
        assert b.peer_document(alice_id)["seq"] == 1


def _has(client: RemoteClient, identity_id: str) -> bool:
    try:
        client.peer_document(identity_id)
    except ApiError:
        return False
    return True
