"""Webhooks: a receiver on loopback gets every change, in order, signed, at least once."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import ServerSelectionTimeoutError

from bench.command_log import CommandLog
from gateway.app import create_app
from gateway.settings import Settings
from gateway.webhook_delivery import DeliveryConfig, WebhookDeliverer
from resolvers import webhooks
from resolvers.errors import BadUserInput
from resolvers.store import Doc, DomainConfig, Store
from tests.conftest import SECRET, Api, codes

SECOND = timedelta(seconds=1)
FAST = DeliveryConfig(poll_seconds=0.02, backoff_base=0.05, backoff_max=0.2, lease_seconds=5)
CREATE = "mutation($u: String!) { createWebhook(url: $u) { id secret failing } }"
CONTACT = 'mutation($n: String!) { createContact(input: {firstName: $n, lastName: "L"}) { id } }'


@dataclass
class Receiver:
    """A tiny HTTP server on 127.0.0.1 that records each POST; answers ``fail_first`` 500s."""

    fail_first: int = 0
    bodies: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    url: str = ""
    hold: asyncio.Event | None = None  # when set: every answer waits for it
    requests: int = 0  # received, answered or not

    async def serve(self) -> asyncio.Server:
        server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"
        return server

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        lines = head.split("\r\n")
        headers = {
            k.strip().lower(): v.strip()
            for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)
        }
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.requests += 1
        if self.hold is not None:
            await self.hold.wait()
        status = 500 if len(self.answers) < self.fail_first else 200
        self.answers.append(status)
        if status == 200:
            self.bodies.append((body, headers))
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    def changes(self) -> list[dict[str, Any]]:
        return [c for body, _ in self.bodies for c in json.loads(body)["changes"]]


@pytest.fixture
async def receiver(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Receiver]:
    monkeypatch.setenv("SCV_WEBHOOK_ALLOW_PRIVATE", "1")
    found = Receiver()
    server = await found.serve()
    yield found
    server.close()
    await server.wait_closed()


async def until(condition: Any, limit: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + limit
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_every_change_arrives_signed_in_order_despite_two_500s(
    api: Api, store: Store, receiver: Receiver
) -> None:
    receiver.fail_first = 2
    hook = (await api.gql(CREATE, {"u": receiver.url}))["createWebhook"]
    assert hook["secret"] and hook["failing"] is False
    ids = [(await api.gql(CONTACT, {"n": f"N{i}"}))["createContact"]["id"] for i in range(5)]
    deliverer = WebhookDeliverer(store, FAST)
    await deliverer.start()
    try:
        await until(lambda: len(receiver.changes()) >= 5)
        await delivered(store, hook["id"])  # the 2xx recorded (a stop before it redelivers)
    finally:
        await deliverer.stop()
    assert receiver.answers[:3] == [500, 500, 200]
    assert [c["contactId"] for c in receiver.changes()] == ids
    assert {c["kind"] for c in receiver.changes()} == {"CONTACT_CREATED"}
    for body, headers in receiver.bodies:
        expected = hmac.new(hook["secret"].encode(), body, hashlib.sha256).hexdigest()
        assert headers["x-scv-signature"] == f"sha256={expected}"
        assert headers["x-scv-delivery"]
    listed = (await api.gql("query { webhooks { id failing lastError secret } }"))["webhooks"]
    assert listed == [{"id": hook["id"], "failing": False, "lastError": None, "secret": None}]


async def test_a_failing_receiver_is_visible_and_backs_off(
    api: Api, store: Store, receiver: Receiver
) -> None:
    receiver.fail_first = 1000
    await api.gql(CREATE, {"u": receiver.url})
    await api.gql(CONTACT, {"n": "A"})
    deliverer = WebhookDeliverer(store, FAST)
    await deliverer.start()
    try:
        await until(lambda: len(receiver.answers) >= 3)
        await asyncio.sleep(0.3)
    finally:
        await deliverer.stop()
    listed = (await api.gql("query { webhooks { failing lastError } }"))["webhooks"]
    assert listed == [{"failing": True, "lastError": "HTTP 500"}]
    # backoff: 0.05, 0.1, 0.2, 0.2 … — far fewer attempts than polls (0.02 s) in the time
    assert len(receiver.answers) < 12


async def test_a_receiver_that_does_not_answer_holds_up_only_its_own_webhook(
    api: Api, store: Store, receiver: Receiver
) -> None:
    stalled = Receiver(hold=asyncio.Event())
    stalled_server = await stalled.serve()
    await api.gql(CREATE, {"u": stalled.url})  # the first webhook due
    await api.gql(CREATE, {"u": receiver.url})
    patient = dataclasses.replace(FAST, timeout=60.0)  # the stalled request never times out here
    deliverer = WebhookDeliverer(store, patient)
    await deliverer.start()
    try:
        first = (await api.gql(CONTACT, {"n": "A"}))["createContact"]["id"]
        await until(lambda: len(receiver.changes()) == 1 and stalled.requests == 1)
        second = (await api.gql(CONTACT, {"n": "B"}))["createContact"]["id"]
        await until(lambda: len(receiver.changes()) == 2)  # while the stalled one still waits
        assert stalled.requests == 1 and stalled.answers == []
        assert stalled.hold is not None
        stalled.hold.set()
        await until(lambda: len(stalled.changes()) == 2)
    finally:
        await deliverer.stop()
        stalled_server.close()
        await stalled_server.wait_closed()
    assert [c["contactId"] for c in receiver.changes()] == [first, second]
    assert [c["contactId"] for c in stalled.changes()] == [first, second]


async def test_a_restart_in_the_middle_loses_nothing_and_one_deliverer_at_a_time(
    api: Api, store: Store, receiver: Receiver
) -> None:
    await api.gql(CREATE, {"u": receiver.url})
    first = [(await api.gql(CONTACT, {"n": f"A{i}"}))["createContact"]["id"] for i in range(3)]
    one, two = WebhookDeliverer(store, FAST), WebhookDeliverer(store, FAST)
    await one.start()
    await two.start()  # a second gateway process: whichever comes second waits for the lease
    try:
        await until(lambda: len(receiver.changes()) >= 3)
        holding = [await one.hold_lease(), await two.hold_lease()]
        assert sorted(holding) == [False, True]  # either may win the race, never both
        holder, heir = (one, two) if holding[0] else (two, one)
        await holder.stop()  # the holding gateway stops (its lease goes)
        second = [(await api.gql(CONTACT, {"n": f"B{i}"}))["createContact"]["id"] for i in range(3)]
        await until(lambda: len(receiver.changes()) >= 6)
        assert await heir.hold_lease() is True
    finally:
        await one.stop()
        await two.stop()
    got = [c["contactId"] for c in receiver.changes()]
    assert got == first + second
    assert len({c["id"] for c in receiver.changes()}) == 6


async def test_a_killed_deliverers_lease_is_taken_over(
    api: Api, store: Store, receiver: Receiver
) -> None:
    await api.gql(CREATE, {"u": receiver.url})
    short = dataclasses.replace(FAST, lease_seconds=0.5)
    dead = WebhookDeliverer(store, short)
    assert await dead.hold_lease()  # and then it dies without releasing
    heir = WebhookDeliverer(store, short)
    await heir.start()
    created = (await api.gql(CONTACT, {"n": "A"}))["createContact"]["id"]
    try:
        await until(lambda: len(receiver.changes()) >= 1)
    finally:
        await heir.stop()
    assert [c["contactId"] for c in receiver.changes()] == [created]


async def delivered(store: Store, webhook_id: str) -> None:
    for _ in range(500):
        hook = await store.webhooks.find_one({"_id": webhook_id})
        if hook is not None and not hook["failing"]:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the webhook still fails")


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "not a url",
        "http://127.0.0.1/x",
        "http://localhost/x",
        "http://10.1.2.3/x",
        "http://192.168.0.1/x",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://metadata.google.internal/x",
        "http://user:pw@93.184.215.14/x",
    ],
)
async def test_refused_urls_are_bad_user_input_and_write_nothing(
    api: Api, store: Store, url: str
) -> None:
    _, errors = await api.gql_error(CREATE, {"u": url})
    assert codes(errors) == ["BAD_USER_INPUT"]
    assert await store.webhooks.count_documents({}) == 0


async def test_private_addresses_pass_only_when_allowed() -> None:
    with pytest.raises(BadUserInput):
        await webhooks.check_url("http://127.0.0.1:9/x", allow_private=False)
    await webhooks.check_url("http://127.0.0.1:9/x", allow_private=True)
    await webhooks.check_url("https://93.184.215.14/hook", allow_private=False)


async def test_delete_webhook_and_unknown_ids(api: Api) -> None:
    hook = (await api.gql(CREATE, {"u": "https://93.184.215.14/hook"}))["createWebhook"]
    delete = "mutation($id: ID!) { deleteWebhook(id: $id) }"
    assert (await api.gql(delete, {"id": hook["id"]}))["deleteWebhook"] is True
    _, errors = await api.gql_error(delete, {"id": hook["id"]})
    assert codes(errors) == ["NOT_FOUND"]
    assert (await api.gql("query { webhooks { id } }"))["webhooks"] == []


async def test_the_apps_lifespan_runs_the_delivery_loop(
    api: Api, mongo_uri: str, settings: Settings, receiver: Receiver
) -> None:
    """A gateway process delivers while it runs: the loop starts and stops with the app."""
    await api.gql(CREATE, {"u": receiver.url})
    app = create_app(settings, uri=mongo_uri, secret=SECRET, ensure_indexes=False)
    async with app.router.lifespan_context(app):
        created = (await api.gql(CONTACT, {"n": "Live"}))["createContact"]["id"]
        await until(lambda: len(receiver.changes()) >= 1)
    assert [c["contactId"] for c in receiver.changes()] == [created]


async def test_delivery_checks_the_address_again(
    api: Api, store: Store, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A receiver allowed when created (SCV_WEBHOOK_ALLOW_PRIVATE=1) but refused at delivery
    time (the setting gone, or a host now resolving to a private address) gets nothing."""
    await api.gql(CREATE, {"u": receiver.url})
    await api.gql(CONTACT, {"n": "A"})
    monkeypatch.delenv("SCV_WEBHOOK_ALLOW_PRIVATE")
    deliverer = WebhookDeliverer(store, FAST)
    await deliverer.start()
    try:
        hook = None
        for _ in range(200):
            hook = await store.webhooks.find_one({})
            if hook is not None and hook["failing"]:
                break
            await asyncio.sleep(0.02)
    finally:
        await deliverer.stop()
    assert hook is not None and hook["failing"]
    assert str(hook["lastError"]).startswith("refused: ")
    assert receiver.answers == []


async def test_a_lease_held_for_more_than_half_its_term_is_not_written_again(
    store: Store,
) -> None:
    deliverer = WebhookDeliverer(store, FAST)  # a 5 s lease
    assert await deliverer.hold_lease()
    taken = await store.leases.find_one({"_id": "webhooks"})
    assert taken is not None
    assert await deliverer.hold_lease()  # the loop wakes for every change: no write
    assert await store.leases.find_one({"_id": "webhooks"}) == taken
    await store.leases.update_one({"_id": "webhooks"}, {"$set": {"owner": "someone else"}})
    deliverer._held_until = taken["until"] - dataclasses.replace(FAST).lease_seconds * SECOND
    assert await deliverer.hold_lease() is False  # at half its term it is read again


async def test_stop_ends_the_loop_even_when_the_driver_swallows_the_cancellation(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under load the driver's server selection once caught the loop's cancellation and
    raised ServerSelectionTimeoutError instead; the loop went on, and the gateway never
    stopped on SIGTERM."""
    rounds = 0

    async def swallowing(self: WebhookDeliverer) -> None:
        nonlocal rounds
        rounds += 1
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise ServerSelectionTimeoutError("selection timed out") from None

    monkeypatch.setattr(WebhookDeliverer, "_deliver_while_woken", swallowing)
    deliverer = WebhookDeliverer(store, FAST)
    await deliverer.start()
    await asyncio.sleep(0.05)
    await asyncio.wait_for(deliverer.stop(), timeout=10)
    assert rounds == 1


async def test_with_no_webhook_the_deliverer_does_not_wake_for_each_change(
    api: Api, mongo_uri: str, db_name: str, receiver: Receiver
) -> None:
    """It looks for a webhook every ``poll_seconds`` instead of following the feed; once
    one is created it follows the feed again, and once the last is deleted it stops."""
    log = CommandLog()
    watching: AsyncMongoClient[Doc] = AsyncMongoClient(
        mongo_uri, tz_aware=True, event_listeners=[log]
    )
    deliverer = WebhookDeliverer(Store(watching[db_name], DomainConfig()), FAST)
    await deliverer.start()
    try:
        for n in range(10):
            await api.gql(CONTACT, {"n": f"Quiet{n}"})
        await asyncio.sleep(0.2)
        assert log.names(), "it looks for webhooks"
        assert set(log.names()) == {"find:webhooks"}, log.names()
        hook = (await api.gql(CREATE, {"u": receiver.url}))["createWebhook"]
        made = (await api.gql(CONTACT, {"n": "Heard"}))["createContact"]["id"]
        await until(lambda: made in [c["contactId"] for c in receiver.changes()])
        assert "aggregate:changes" in log.names()  # the feed is followed again
        await api.gql("mutation($id: ID!) { deleteWebhook(id: $id) }", {"id": hook["id"]})
        await until(
            lambda: deliverer._webhooks_seen is not None and not deliverer._webhooks_seen[1]
        )
        await asyncio.sleep(0.1)
        log.clear()
        for n in range(5):
            await api.gql(CONTACT, {"n": f"Quiet again {n}"})
        await asyncio.sleep(0.2)
        assert set(log.names()) == {"find:webhooks"}, log.names()
    finally:
        await deliverer.stop()
        await watching.close()
