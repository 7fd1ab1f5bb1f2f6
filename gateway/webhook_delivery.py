"""The webhook delivery loop: POSTs each webhook's changes, in feed order, at least once.

One loop per gateway process, started and stopped with the app's lifespan; a lease document
(``leases``, ``_id: "webhooks"``) lets only one process deliver at a time, and another takes
over when its holder stops renewing it. Per webhook, one request at a time: the next ≤ 100
changes after its stored ``position``; a 2xx answer moves the position past them, anything
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
from datetime import timedelta

import httpx
import orjson
from pymongo.errors import DuplicateKeyError, PyMongoError

from resolvers import changes
from resolvers.clock import now
from resolvers.documents import WebhookDoc
from resolvers.store import Store

log = logging.getLogger("scv.webhooks")

LEASE_ID = "webhooks"
BATCH = 100


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

    async def start(self) -> None:
        self._http = httpx.AsyncClient(timeout=self.config.timeout, follow_redirects=False)
        self._task = asyncio.create_task(self._run(), name="scv-webhook-delivery")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(PyMongoError):
            await self.store.leases.delete_one({"_id": LEASE_ID, "owner": self.owner})
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _run(self) -> None:
        while True:
            try:
                if await self.hold_lease():
                    await self.deliver_due()
            except PyMongoError as exc:  # the database is away: try again later
                log.warning("webhook delivery paused: %s", exc)
            await asyncio.sleep(self.config.poll_seconds)

    async def hold_lease(self) -> bool:
        """Take or renew the delivery lease; False while another process holds it."""
        moment = now()
        until = moment + timedelta(seconds=self.config.lease_seconds)
        try:
            await self.store.leases.update_one(
                {"_id": LEASE_ID, "$or": [{"owner": self.owner}, {"until": {"$lt": moment}}]},
                {"$set": {"owner": self.owner, "until": until}},
                upsert=True,
            )
        except DuplicateKeyError:
            return False  # held by another process, and not expired
        return True

    async def deliver_due(self) -> int:
        """One attempt for every webhook that is due; returns how many changes were delivered."""
        due = await self.store.webhooks.find({"nextAttemptAt": {"$lte": now()}}).to_list(1000)
        delivered = 0
        for hook in due:
            delivered += await self.deliver(hook)
        return delivered

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
