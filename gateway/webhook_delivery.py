"""The webhook delivery loop: POSTs each webhook's changes, in feed order, at least once.

One loop per gateway process, started and stopped with the app's lifespan; a lease document
(``leases``, ``_id: "webhooks"``) lets only one process deliver at a time, and another takes
over when its holder stops renewing it. Per webhook, one request at a time: the next ≤ 100
changes after its stored ``position`` (up to CONCURRENT_DELIVERIES webhooks at once, so a slow
receiver holds up only its own webhook); a 2xx answer moves the position past them, anything
else (or no answer within the timeout) is retried after a backoff that doubles from
``backoff_base`` to ``backoff_max``, and the webhook shows ``failing``/``lastError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import orjson
from pymongo.errors import DuplicateKeyError, PyMongoError

from resolvers import changes, webhooks
from resolvers.clock import now
from resolvers.documents import WebhookDoc
from resolvers.errors import BadUserInput
from resolvers.store import Store

log = logging.getLogger("scv.webhooks")

LEASE_ID = "webhooks"
BATCH = 100
# webhooks delivered at once: a slow or unreachable receiver delays only its own webhook
CONCURRENT_DELIVERIES = 16
STOP_WAIT_S = 5.0
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class DeliveryConfig:
    poll_seconds: float = 0.5
    backoff_base: float = 1.0  # seconds; tests make it small
    backoff_max: float = 600.0
    timeout: float = 10.0
    lease_seconds: float = 15.0


def signature(secret: str, body: bytes) -> str:
    """The ``X-SCV-Signature`` header's value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookDeliverer:
    """Delivers every org's webhooks while this process holds the delivery lease."""

    def __init__(self, store: Store, config: DeliveryConfig | None = None) -> None:
        self.store = store
        self.config = config or DeliveryConfig()
        self.owner = uuid.uuid4().hex
        self._task: asyncio.Task[None] | None = None
        self._http: httpx.AsyncClient | None = None
        self._under_way: dict[str, asyncio.Task[int]] = {}  # webhook id → its delivery
        self._stopping = False
        self._held_until: datetime | None = None  # the lease as this process last wrote it
        self._webhooks_seen: tuple[datetime, bool] | None = None  # when, and whether any

    async def start(self) -> None:
        self._http = httpx.AsyncClient(timeout=self.config.timeout, follow_redirects=False)
        self._task = asyncio.create_task(self._run(), name="scv-webhook-delivery")

    async def stop(self) -> None:
        """Cancel the loop and the deliveries under way, wait for them (at most
        STOP_WAIT_S: a cancelled database call can outlive its cancellation), then give
        the lease up."""
        self._stopping = True
        tasks = [*self._under_way.values(), *([self._task] if self._task is not None else [])]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=STOP_WAIT_S)
        for task in tasks:  # retrieved: an ended task's error is not reported again
            if task.done() and not task.cancelled():
                task.exception()
        self._task = None
        self._held_until = None
        with contextlib.suppress(PyMongoError):
            await self.store.leases.delete_one({"_id": LEASE_ID, "owner": self.owner})
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _run(self) -> None:
        # Not ``while True``: a cancellation can be swallowed by the driver (seen under load
        # in its server selection, which then raised ServerSelectionTimeoutError), and the
        # loop must still end once stop() has been called.
        while not self._stopping:
            try:
                await self._deliver_while_woken()
            except PyMongoError as exc:  # the database is away: try again later
                if self._stopping:
                    return
                log.warning("webhook delivery paused: %s", exc)
                await asyncio.sleep(self.config.poll_seconds)

    async def _deliver_while_woken(self) -> None:
        """Deliver, then wait for the next change recorded (a change stream on the feed's
        inserts) or ``poll_seconds`` (retries that are due, holes that settle).

        While no org has a webhook it only looks for one every ``poll_seconds``: waking for
        every change recorded cost a getMore and a read of the due webhooks each (``make
        load``: about 20 wakes a second, for nothing)."""
        if not await self.any_webhook():
            await asyncio.sleep(self.config.poll_seconds)
            return
        pipeline = [{"$match": {"operationType": "insert"}}]
        wait_ms = max(1, int(self.config.poll_seconds * 1000))
        async with await self.store.changes_watched.watch(
            pipeline, max_await_time_ms=wait_ms
        ) as stream:
            while True:
                if await self.hold_lease():
                    started = await self.start_due()
                    if not started and not self._under_way and not await self.any_webhook():
                        return  # the last webhook was deleted
                    await stream.try_next()
                else:
                    await asyncio.sleep(self.config.poll_seconds)

    async def any_webhook(self) -> bool:
        """Whether any org has a webhook, read at most once every ``poll_seconds``."""
        moment = now()
        if self._webhooks_seen is not None and moment < self._webhooks_seen[0] + timedelta(
            seconds=self.config.poll_seconds
        ):
            return self._webhooks_seen[1]
        found = await self.store.webhooks.find_one(
            {"nextAttemptAt": {"$gte": EPOCH}}, {"_id": 1}
        )  # every webhook has one: the ``due`` index serves it (the embedded server reads
        # each webhook it matches, at most MAX_WEBHOOKS per org, as start_due does)
        self._webhooks_seen = (moment, found is not None)
        return found is not None

    async def hold_lease(self) -> bool:
        """Take or renew the delivery lease; False while another process holds it. A
        compare-and-set on the lease as read, so two processes never both take it.

        A lease this process holds for more than half its term yet is not written again:
        the loop wakes for every change recorded, and renewing it each time was two of the
        four commands of every wake (``make load``: about 20 wakes a second)."""
        moment = now()
        half = timedelta(seconds=self.config.lease_seconds / 2)
        if self._held_until is not None and moment < self._held_until - half:
            return True
        self._held_until = None
        if await self._take_or_renew(moment):
            self._held_until = moment + timedelta(seconds=self.config.lease_seconds)
            return True
        return False

    async def _take_or_renew(self, moment: datetime) -> bool:
        fresh = {
            "owner": self.owner,
            "until": moment + timedelta(seconds=self.config.lease_seconds),
        }
        lease = await self.store.leases.find_one({"_id": LEASE_ID})
        if lease is None:
            try:
                await self.store.leases.insert_one({"_id": LEASE_ID, **fresh})
            except DuplicateKeyError:
                return False  # taken by another process just now
            return True
        if lease["owner"] == self.owner:  # renewing its own
            renewed = await self.store.leases.update_one(
                {"_id": LEASE_ID, "owner": self.owner}, {"$set": fresh}
            )
            return renewed.matched_count == 1
        if lease["until"] >= moment:
            return False  # held by another process, and not expired
        taken = await self.store.leases.update_one(
            {"_id": LEASE_ID, "owner": lease["owner"], "until": lease["until"]}, {"$set": fresh}
        )
        return taken.modified_count == 1

    async def deliver_due(self) -> int:
        """One attempt for every due webhook, all at once, awaited; how many changes went."""
        outcomes = await asyncio.gather(*await self.start_due(), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return sum(o for o in outcomes if isinstance(o, int))

    async def start_due(self) -> list[asyncio.Task[int]]:
        """Start one attempt for every due webhook that has none under way (at most
        CONCURRENT_DELIVERIES at once) and return them: the loop goes on without waiting, so
        a receiver that answers slowly holds up only its own webhook."""
        # a delivery that ends while the webhooks are read leaves its document as read stale
        # (its old position): it is started again next time, not from this read
        busy = set(self._under_way)
        due = await self.store.webhooks.find({"nextAttemptAt": {"$lte": now()}}).to_list(1000)
        started: list[asyncio.Task[int]] = []
        for hook in due:
            if len(self._under_way) >= CONCURRENT_DELIVERIES:
                break
            if hook["_id"] not in busy and hook["_id"] not in self._under_way:
                started.append(self._start(hook))
        return started

    def _start(self, hook: WebhookDoc) -> asyncio.Task[int]:
        hook_id = hook["_id"]
        task = asyncio.create_task(self.deliver(hook), name=f"scv-webhook-{hook_id}")
        self._under_way[hook_id] = task
        task.add_done_callback(lambda done: self._finished(hook_id, done))
        return task

    def _finished(self, hook_id: str, task: asyncio.Task[int]) -> None:
        self._under_way.pop(hook_id, None)
        if not task.cancelled() and task.exception() is not None:  # retried when due again
            log.warning("webhook %s delivery paused: %s", hook_id, task.exception())

    async def deliver(self, hook: WebhookDoc) -> int:
        page = await changes.read_changes(
            self.store, hook["org"], after=hook["position"], first=BATCH, kinds=hook["kinds"]
        )
        if not page.docs:
            if page.end > hook["position"]:  # only changes of other kinds, or voids
                await self._succeeded(hook, page.end)
            return 0
        body = orjson.dumps({"changes": [changes.change_json(d) for d in page.docs]})
        error = await self._post(hook, body)
        if error is None:
            await self._succeeded(hook, page.end)
            return len(page.docs)
        await self._failed(hook, error)
        return 0

    async def _post(self, hook: WebhookDoc, body: bytes) -> str | None:
        """None when the receiver answered 2xx, else what went wrong."""
        assert self._http is not None
        headers = {
            "Content-Type": "application/json",
            "X-SCV-Signature": signature(hook["secret"], body),
            "X-SCV-Delivery": uuid.uuid4().hex,
        }
        try:  # checked again at each delivery: the host's addresses may have changed
            await webhooks.check_url(hook["url"], allow_private=webhooks.private_allowed())
        except BadUserInput as refused:
            return f"refused: {refused.message}"[:500]
        try:
            response = await self._http.post(hook["url"], content=body, headers=headers)
        except httpx.TimeoutException:
            return f"no answer within {self.config.timeout:g} s"
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"[:500]
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}"

    async def _succeeded(self, hook: WebhookDoc, position: int) -> None:
        # conditional on the position read: a deliverer that lost its lease moves nothing back
        await self.store.webhooks.update_one(
            {"_id": hook["_id"], "position": hook["position"]},
            {
                "$set": {
                    "position": position,
                    "failing": False,
                    "lastError": None,
                    "attempts": 0,
                    "nextAttemptAt": now(),
                }
            },
        )

    async def _failed(self, hook: WebhookDoc, error: str) -> None:
        attempts = hook["attempts"] + 1
        delay = min(self.config.backoff_base * 2 ** (attempts - 1), self.config.backoff_max)
        log.info("webhook %s failed (%s); next attempt in %.3g s", hook["_id"], error, delay)
        await self.store.webhooks.update_one(
            {"_id": hook["_id"], "position": hook["position"]},
            {
                "$set": {
                    "failing": True,
                    "lastError": error,
                    "attempts": attempts,
                    "nextAttemptAt": now() + timedelta(seconds=delay),
                }
            },
        )
