"""A contact writing to the published mailbox, run as a process by test_put_proofs_processes.

``python _old_contact_driver.py HOST PORT`` is a user ("carol") built from the
messaging engine (:class:`~dchat_messaging.UserMessaging` over a memory
store) and the relay client, like a node that predates rotating tags: it
ignores ``mb.tag`` and deposits to the published mailbox, so the primary
mailbox's put authorization is what it uses. It publishes its prekeys at the
relay, prints its card, reads alice's card from stdin, waits in its mailbox
until alice's first mail hands it a contact secret (``put.proof``), then
sends alice one text through :class:`~dchat_network.RelayPool` (which proves
contact when the relay asks for work; refused items are retried every 2 s,
as an outbox would) and prints the deposit's results as JSON: ``{"secret":
bool, "tries": n, "results": [entry id hex or refusal code, ...]}``.
"""

from __future__ import annotations

import json
import sys
import time

import trio

from dchat_identity import ContactCard, Identity
from dchat_messaging import Content, UserMessaging
from dchat_messaging.testing import MemoryMessageStore
from dchat_network import RelayPool, relay_session

WAIT = 90.0


async def main(host: str, port: int) -> None:
    identity = Identity.generate()
    card = ContactCard.issue(identity, name="carol", relay=f"{host}:{port}")
    agent = UserMessaging(MemoryMessageStore())
    agent.engines.set_main(identity, card)
    engine = agent.engines.main()
    assert engine is not None
    mine = bytes(card.mailbox)
    with trio.fail_after(WAIT):
        async with relay_session(host, port, node_key=identity.mailbox_key) as own:
            upload = engine.prekey_upload(held=0, now=time.time())
            assert upload is not None
            last, one_time = upload.last_resort, list(upload.one_time)
            await own.put_prekeys(mine, last, one_time, replace=upload.replace)
            print(card.to_text(), flush=True)
            alice = ContactCard.from_text(
                (await trio.to_thread.run_sync(sys.stdin.readline)).strip()
            )
            agent.contacts.add("alice", alice.to_text(), now=time.time())
            theirs = bytes(alice.mailbox)
            ack: list[bytes] = []
            while agent.secret_for(theirs) is None:  # alice's first mail hands it over
                batch = await own.pull(mine, ack, wait=5.0)
                agent.accept_many(engine, [envelope for _, envelope in batch], now=time.time())
                ack = [entry for entry, _ in batch]
            await own.pull(mine, ack, wait=0.0)
        content = Content.text_message("hello alice, by proof", now_ms=int(time.time() * 1000))
        agent.send_as(alice, content, now=time.time())
        pool = RelayPool(secrets=agent.secret_for, max_bits=4)  # no token; too little for work
        for waiting, device in agent.bundles_due(time.time()):
            bundle = await pool.get_prekeys(host, port, bytes(device.mailbox))
            agent.bundle_received(waiting, device, bundle, now=time.time())
        entries = list(agent.outbox.due(time.time() + 60, 64))
        items = [(entry.mailbox, entry.envelope) for entry in entries]  # not routed to tags
        results: list[bytes | str] = ["pow"] * len(items)
        tries = 0
        while "pow" in results:  # as an outbox retries: alice's link registers her new
            tries += 1  # ring when its held pull returns (within PULL_WAIT, 20 s)
            todo = [i for i, r in enumerate(results) if r == "pow"]
            again = await pool.put_many(host, port, [items[i] for i in todo])
            for i, result in zip(todo, again, strict=True):
                results[i] = result
            if "pow" in results:
                await trio.sleep(2.0)
        await pool.aclose()
    shown = [r.hex() if isinstance(r, bytes) else r for r in results]
    print(json.dumps({"secret": True, "tries": tries, "results": shown}), flush=True)


if __name__ == "__main__":
    trio.run(main, sys.argv[1], int(sys.argv[2]))
