"""Web traffic for the demo data set: visits of the seeded cookies, with form fills that stitch.

Written by ``scv seed`` after the data set (``gateway.seeding.seed``), over the cookies it
claimed, as the documents ``recordWebEvents`` would leave behind:

- some cookie-only visitors (EPHEMERAL) fill in a form with a curated person's email: the
  cookie's claim moves to that person (:func:`stitch_visitors`), so their earlier visits join
  the person's journey, and a ``FORM_SUBMIT`` event records the fill;
- every seeded cookie gets visits (sessions of 1 to 12 events, two minutes apart) until
  ``events`` are written, a long tail of one-visit cookies and some regulars; the sessions
  are joined from the events by the gap rule (``resolvers.web_sessions.join``);
- an auto-created holder's visits fall between its creation and its last interaction (its
  expiry stays what its interactions made it); a curated holder's anywhere in the history.

Events and sessions are bulk-inserted (``insert_many`` in batches), a cookie at a time, so
memory stays flat whatever ``events`` is.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pymongo import UpdateOne

from gateway.seeding import HISTORY, object_id
from resolvers import claims, web_sessions
from resolvers.clock import now, to_db_precision
from resolvers.contact_fields import ContactType
from resolvers.documents import ContactDoc
from resolvers.identifiers import IdentifierType, key
from resolvers.store import Store
from resolvers.web_documents import WebEventDoc, WebSessionDoc

BATCH = 1000  # events a write (5,000 could outlast the 5 s database timeout)
STITCHED_SHARE = 0.15  # of the cookie-only visitors: fill in a form as a known person
PAGES = ("/", "/pricing", "/products", "/products/phones", "/support", "/blog", "/checkout")
REFERRERS = ("https://search.example/", "https://social.example/", None, None, None)


@dataclass(frozen=True)
class Visitor:
    """A seeded cookie, who holds it, and when its visits may happen."""

    cookie: str
    holder: ContactDoc
    earliest: datetime
    latest: datetime
    form_fill: bool = False  # stitched: its last visit fills in the form


async def stitch_visitors(
    store: Store, org: str, visitors: list[Visitor], people: Sequence[ContactDoc], seed: int
) -> list[Visitor]:
    """Move the cookies of some cookie-only visitors to curated people (their form fills)."""
    rng = random.Random(f"web-stitch:{seed}")
    curated = [p for p in people if p["type"] == ContactType.CURATED and p.get("workEmail")]
    moved: list[Visitor] = []
    operations: list[UpdateOne] = []
    for visitor in visitors:
        if visitor.holder["type"] != ContactType.EPHEMERAL or not curated:
            moved.append(visitor)
            continue
        if rng.random() >= STITCHED_SHARE:
            moved.append(visitor)
            continue
        person = rng.choice(curated)
        cookie_key = key(IdentifierType.COOKIE, visitor.cookie)
        operations.append(
            UpdateOne(
                {"org": org, "key": cookie_key, "contactId": visitor.holder["_id"]},
                {"$set": claims.claim_doc(org, cookie_key, person, claims.VIA_INTERACTION)},
            )
        )
        moved.append(Visitor(visitor.cookie, person, visitor.earliest, visitor.latest, True))
    for start in range(0, len(operations), BATCH):
        await store.identifiers.bulk_write(operations[start : start + BATCH], ordered=False)
    return moved


def _visits(rng: random.Random, visitor: Visitor, wanted: int) -> list[list[datetime]]:
    """``wanted`` events of one cookie as visits: sessions of 1-12 events, 2 minutes apart."""
    span = max((visitor.latest - visitor.earliest).total_seconds(), 0.0)
    visits: list[list[datetime]] = []
    left = wanted
    while left > 0:
        size = min(left, rng.randint(1, 12))
        start = visitor.earliest + timedelta(seconds=span * rng.random())
        visits.append([to_db_precision(start + timedelta(minutes=2 * n)) for n in range(size)])
        left -= size
    return visits


def _event(
    org: str, ids: random.Random, cookie: str, at: datetime, retention: int, n: int
) -> WebEventDoc:
    event_id = object_id(ids, at)
    return {
        "_id": event_id,
        "eventId": event_id,
        "org": org,
        "cookie": cookie,
        "type": "PAGE_VIEW",
        "at": at,
        "url": PAGES[n % len(PAGES)],
        "title": None,
        "referrer": REFERRERS[n % len(REFERRERS)] if n == 0 else None,
        "name": None,
        "attributes": [],
        "expiresAt": at + timedelta(days=retention),
    }


@dataclass
class _Writer:
    store: Store
    org: str
    tick: Callable[[int], None]
    events: list[WebEventDoc]
    sessions: list[WebSessionDoc]
    written: int = 0

    async def add(self, events: list[WebEventDoc], sessions: list[WebSessionDoc]) -> None:
        self.events.extend(events)
        self.sessions.extend(sessions)
        if len(self.events) >= BATCH:
            await self.flush()

    async def flush(self) -> None:
        if self.events:
            await self.store.web_events.insert_many(self.events, ordered=False)
            self.written += len(self.events)
            self.tick(len(self.events))
        if self.sessions:
            await self.store.web_sessions.insert_many(self.sessions, ordered=False)
        self.events, self.sessions = [], []


async def write_traffic(
    store: Store,
    org: str,
    visitors: list[Visitor],
    events: int,
    seed: int,
    tick: Callable[[int], None],
) -> int:
    """About ``events`` web events over ``visitors`` and their sessions; returns how many."""
    if not visitors or events <= 0:
        return 0
    rng = random.Random(f"web:{seed}")
    ids = random.Random(f"web-ids:{org}:{seed}")
    weights = list(itertools.accumulate(min(rng.paretovariate(1.3), 40) for _ in visitors))
    counts = [0] * len(visitors)
    for who in rng.choices(range(len(visitors)), cum_weights=weights, k=events):
        counts[who] += 1
    writer = _Writer(store, org, tick, [], [])
    gap = web_sessions.gap_of(store)
    retention = store.config.retention_days
    for visitor, count in zip(visitors, counts, strict=True):
        docs = [
            _event(org, ids, visitor.cookie, at, retention, n)
            for visit in _visits(rng, visitor, max(count, 1))
            for n, at in enumerate(visit)
        ]
        if visitor.form_fill:
            last = max(docs, key=lambda d: d["at"])
            last["type"], last["url"], last["title"] = "FORM_SUBMIT", "/contact-us", "Contact us"
        pieces = [web_sessions.piece(org, d) for d in docs]
        sessions = [
            {**joined, "_id": object_id(ids, joined["startedAt"])}
            for joined, _ in web_sessions.join(pieces, gap)
        ]
        await writer.add(docs, sessions)  # type: ignore[arg-type]
    await writer.flush()
    return writer.written


async def seeded_visitors(store: Store, org: str, at: datetime) -> list[Visitor]:
    """Every cookie the org's contacts claim, with its holder and when it may have visited."""
    cookie_claims = await store.identifiers.find(
        {"org": org, "key": {"$regex": "^COOKIE:"}}, {"value": 1, "contactId": 1}
    ).to_list()
    holder_ids = sorted({c["contactId"] for c in cookie_claims})
    holders: dict[str, ContactDoc] = {}
    for start in range(0, len(holder_ids), 1000):
        chunk = holder_ids[start : start + 1000]
        for doc in await store.contacts.find({"org": org, "_id": {"$in": chunk}}).to_list():
            holders[doc["_id"]] = doc
    visitors: list[Visitor] = []
    for claim in sorted(cookie_claims, key=lambda c: c["value"]):
        holder = holders.get(claim["contactId"])
        if holder is None:
            continue
        earliest, latest = at - HISTORY, at
        if holder["type"] != ContactType.CURATED and not holder.get("mergeSetId"):
            earliest = holder["createdAt"]
            latest = holder.get("lastSeenAt") or holder["createdAt"]
        visitors.append(Visitor(claim["value"], holder, earliest, latest))
    return visitors


async def seed_web_traffic(
    store: Store, org: str, events: int, seed: int, tick: Callable[[int], None]
) -> tuple[int, int]:
    """The seeded cookies' visits: (events written, visitors stitched by a form fill)."""
    at = now()
    visitors = await seeded_visitors(store, org, at)
    people = [v.holder for v in visitors]
    curated = (
        await store.contacts.find({"org": org, "type": ContactType.CURATED, "readOnly": False})
        .limit(2000)
        .to_list()
    )
    visitors = await stitch_visitors(store, org, visitors, [*people, *curated], seed)
    written = await write_traffic(store, org, visitors, events, seed, tick)
    return written, sum(1 for v in visitors if v.form_fill)
