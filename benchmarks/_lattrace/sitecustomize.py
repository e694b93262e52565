"""Benchmark-only stage stamps for ``trace_e2e.py`` (never imported by the product).

``trace_e2e.py`` puts this folder on the node processes' ``PYTHONPATH`` with
``DCHAT_LATTRACE`` naming an output folder; Python then imports this module at
start-up, and it wraps the steps of a message's way (alice's API, her group
commit, the outbox, the relay, bob's receive, his event stream) to write
``stage key monotonic-time`` lines. ``time.monotonic`` is CLOCK_MONOTONIC, one
clock for every process of the machine, so the lines of the three processes
line up. Without ``DCHAT_LATTRACE`` it does nothing.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time

_DIR = os.environ.get("DCHAT_LATTRACE")
_lock = threading.Lock()
_group = [0]


def _h(envelope: bytes) -> str:
    return hashlib.blake2b(envelope, digest_size=8).hexdigest()


def _install() -> None:
    from dchat_core import MessageId
    from dchat_messaging import UserMessaging, _converse, _outbox
    from dchat_network import _relay_host, _relay_onion_pool, _relay_server
    from dchat_network._relay import RelayBatch, RelayPull, RelayPutMany
    from dchat_node.api import _events, _socket
    from dchat_node.user import _delivery, _service
    from dchat_storage import _async

    out = open(os.path.join(_DIR, f"{os.getpid()}.txt"), "a", buffering=1)  # noqa: SIM115

    def t(stage: str, key: object, extra: object = "") -> None:
        line = f"{stage} {key} {time.monotonic():.6f} {extra}\n"
        with _lock:
            out.write(line)

    def mid(x: object) -> str:
        return str(x if isinstance(x, MessageId) else MessageId(x))

    # -- group commit
    orig_commit = _async._commit_group

    def commit_group(db, calls):  # type: ignore[no-untyped-def]
        _group[0] += 1
        t("g.start", _group[0], len(calls))
        try:
            return orig_commit(db, calls)
        finally:
            t("g.end", _group[0])

    _async._commit_group = commit_group
    orig_run = _async.AsyncStore.run

    # -- alice
    orig_send_message = _socket._Socket._send_message

    async def send_message(self, request):  # type: ignore[no-untyped-def]
        idx = str(request.get("text", ""))[:6]
        t("a.ws", idx)
        answer = await orig_send_message(self, request)
        t("a.answered", idx, answer.get("message_id"))
        return answer

    _socket._Socket._send_message = send_message
    orig_send_text = _converse.ConversationActions.send_text

    def send_text(self, peer, text, **kw):  # type: ignore[no-untyped-def]
        idx = text[:6]
        t("a.fn0", idx, _group[0])
        r = orig_send_text(self, peer, text, **kw)
        t("a.fn1", idx, mid(r[0]))
        return r

    _converse.ConversationActions.send_text = send_text
    orig_due = _outbox.Outbox.due

    def due(self, now, limit=64):  # type: ignore[no-untyped-def]
        r = orig_due(self, now, limit)
        for e in r:
            t("a.due", mid(e.message_id), len(r))
        return r

    _outbox.Outbox.due = due
    orig_route = UserMessaging.route

    def route(self, entries, now):  # type: ignore[no-untyped-def]
        items = orig_route(self, entries, now)
        for e, (_, env) in zip(entries, items, strict=False):
            t("a.route", mid(e.message_id), _h(env))
        return items

    UserMessaging.route = route
    orig_deposit = _relay_onion_pool.OnionPool.deposit

    async def deposit(self, relay, items):  # type: ignore[no-untyped-def]
        for _, env in items:
            t("a.put0", _h(env), len(items))
        r = await orig_deposit(self, relay, items)
        for _, env in items:
            t("a.put1", _h(env))
        return r

    _relay_onion_pool.OnionPool.deposit = deposit
    orig_deposited = UserMessaging.deposited

    def deposited(self, batch, results, **kw):  # type: ignore[no-untyped-def]
        for e in batch:
            t("a.settle", mid(e.message_id), _group[0])
        return orig_deposited(self, batch, results, **kw)

    UserMessaging.deposited = deposited

    # -- relay
    orig_triage = _relay_server.RelayServer.triage

    def triage(self, owner, data, now, budget=None):  # type: ignore[no-untyped-def]
        work = orig_triage(self, owner, data, now, budget)
        req = getattr(work, "request", None)
        if isinstance(req, RelayPutMany):
            for _, env in req.items:
                t("r.triage", _h(env), len(req.items))
        elif isinstance(req, RelayPull):
            t("r.pullreq", len(req.ack))
        return work

    _relay_server.RelayServer.triage = triage
    orig_serve = _relay_server.RelayServer.serve

    def serve(self, owner, request, now):  # type: ignore[no-untyped-def]
        if isinstance(request, RelayPutMany):
            for _, env in request.items:
                t("r.serve", _h(env), _group[0])
        reply = orig_serve(self, owner, request, now)
        if isinstance(reply.message, RelayBatch):
            for _, env in reply.message.items:
                t("r.pushnow", _h(env))
        return reply

    _relay_server.RelayServer.serve = serve
    orig_resume = _relay_server.RelayServer.resume

    def resume(self, pull):  # type: ignore[no-untyped-def]
        t("r.resume0", 0)
        reply = orig_resume(self, pull)
        if isinstance(reply.message, RelayBatch):
            for _, env in reply.message.items:
                t("r.resume", _h(env))
        return reply

    _relay_server.RelayServer.resume = resume
    orig_hand_over = getattr(_relay_server.RelayServer, "hand_over", None)

    def hand_over(self, pull, items):  # type: ignore[no-untyped-def]
        reply = orig_hand_over(self, pull, items)
        if reply is not None:
            for _, env in reply.message.items:
                t("r.resume", _h(env))
        return reply

    if orig_hand_over is not None:
        _relay_server.RelayServer.hand_over = hand_over
    orig_wake = _relay_host.RelayHost._wake

    def wake(self, mailboxes, *more):  # type: ignore[no-untyped-def]
        if mailboxes:
            t("r.wake", len(mailboxes))
        return orig_wake(self, mailboxes, *more)

    _relay_host.RelayHost._wake = wake

    # -- bob
    orig_accept_cb = _delivery.MailDelivery._accept

    async def accept_cb(self, engine, identity, batch):  # type: ignore[no-untyped-def]
        for _, env in batch:
            t("b.recv", _h(env), len(batch))
        r = await orig_accept_cb(self, engine, identity, batch)
        for _, env in batch:
            t("b.handled", _h(env))
        return r

    _delivery.MailDelivery._accept = accept_cb
    orig_accept = UserMessaging.accept

    def accept(self, engine, data, *, now):  # type: ignore[no-untyped-def]
        t("b.fn0", _h(data), _group[0])
        r = orig_accept(self, engine, data, now=now)
        for text in r.texts:
            t("b.fn1", _h(data), mid(text.message_id))
        return r

    UserMessaging.accept = accept
    orig_notify = _events.EventFeed.notify

    def notify(self):  # type: ignore[no-untyped-def]
        t("b.notify", 0)
        return orig_notify(self)

    _events.EventFeed.notify = notify
    orig_page = _events.EventFeed.page

    async def page(self, after, limit):  # type: ignore[no-untyped-def]
        t("b.page0", after)
        events = await orig_page(self, after, limit)
        for e in events:
            if e["kind"] == "message":
                t("b.page", e["data"]["message_id"], e["data"]["direction"])
        return events

    _events.EventFeed.page = page
    orig_recent = getattr(_events.EventFeed, "recent", None)

    def recent(self, after, limit):  # type: ignore[no-untyped-def]
        events = orig_recent(self, after, limit)
        for e in events or []:
            if e["kind"] == "message":
                t("b.page", e["data"]["message_id"], e["data"]["direction"])
        return events

    if orig_recent is not None:  # the feed's events from memory (no page read)
        _events.EventFeed.recent = recent
    orig_sock_send = _socket._Socket._send

    async def sock_send(self, frame):  # type: ignore[no-untyped-def]
        event = frame.get("event")
        await orig_sock_send(self, frame)
        if event is not None and event["kind"] == "message":
            t("b.wssent", event["data"]["message_id"])

    _socket._Socket._send = sock_send
    del orig_run, _service


if _DIR:
    _install()
