"""Benchmarks of the integration operations (CONTRACT.md section 7), side by side in one run:

- bulk create: one ``bulkCreateContacts`` of 200 contacts vs 200 ``createContact`` calls
  (target ≤ 0.2x the time) vs the raw driver's ``insert_many`` of the same documents;
- scan: the whole seeded directory through ``scanContacts`` in pages of 200 vs one raw
  cursor over the same contacts (target ≥ 0.5x the rows per second).

Each side runs ``rounds`` times, alternating, and the best time of each counts.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from bench.operations import gql
from resolvers.contact_fields import ContactType, clean_input
from resolvers.contacts import new_contact_doc
from resolvers.store import Store

BULK = 200
CREATE = "mutation($i: ContactInput!) { createContact(input: $i) { id } }"
BULK_CREATE = """mutation($i: [ContactInput!]!) {
  bulkCreateContacts(inputs: $i) { index contact { id } error { code } } }"""
SCAN = """query($after: String) { scanContacts(first: 200, after: $after) {
  pageInfo { hasNextPage endCursor }
  edges { node { id type firstName lastName cellPhone workEmail modifiedAt } } } }"""


def people(batch: int) -> list[dict[str, Any]]:
    return [
        {
            "firstName": f"Bench{batch}",
            "lastName": f"Bulk{n}",
            "cellPhone": f"+1919{batch % 1000:03d}{n:04d}",
            "workEmail": f"bench{batch}.{n}@bulk.example",
        }
        for n in range(BULK)
    ]


async def bulk_create(http: httpx.AsyncClient, batch: int) -> None:
    data = await gql(http, BULK_CREATE, {"i": people(batch)})
    failed = [i for i in data["bulkCreateContacts"] if i["error"] is not None]
    if failed:
        raise RuntimeError(f"bulk create failed: {failed[:3]}")


async def single_creates(http: httpx.AsyncClient, batch: int) -> None:
    for person in people(batch):
        await gql(http, CREATE, {"i": person})


async def raw_inserts(store: Store, org: str, batch: int) -> None:
    region = store.config.default_region
    docs = [
        new_contact_doc(store, org, clean_input(p, region), ContactType.CURATED)
        for p in people(batch)
    ]
    await store.contacts.insert_many(docs)


async def measure_bulk(
    http: httpx.AsyncClient, store: Store, org: str, rounds: int
) -> dict[str, float]:
    """The best seconds of each side for 200 contacts."""
    best = {"bulk": float("inf"), "singles": float("inf"), "raw": float("inf")}
    batch = 100
    for n in range(rounds):
        for side in ("bulk", "singles", "raw") if n % 2 == 0 else ("raw", "singles", "bulk"):
            batch += 1
            started = time.perf_counter()
            if side == "bulk":
                await bulk_create(http, batch)
            elif side == "singles":
                await single_creates(http, batch)
            else:
                await raw_inserts(store, f"{org}-raw", batch)
            best[side] = min(best[side], time.perf_counter() - started)
    return best


async def gateway_scan(http: httpx.AsyncClient) -> int:
    count, after = 0, None
    while True:
        page = (await gql(http, SCAN, {"after": after}))["scanContacts"]
        count += len(page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            return count
        after = page["pageInfo"]["endCursor"]


async def raw_scan(store: Store, org: str) -> int:
    count = 0
    async for _ in store.contacts.find({"org": org, "readOnly": False, "type": "CURATED"}):
        count += 1
    return count


async def measure_scan(
    http: httpx.AsyncClient, store: Store, org: str, rounds: int
) -> tuple[dict[str, float], dict[str, int]]:
    """The best seconds of each side for the whole directory, and the rows each read."""
    best = {"gateway": float("inf"), "raw": float("inf")}
    rows: dict[str, int] = {}
    for n in range(rounds):
        for side in ("gateway", "raw") if n % 2 == 0 else ("raw", "gateway"):
            started = time.perf_counter()
            rows[side] = await (gateway_scan(http) if side == "gateway" else raw_scan(store, org))
            best[side] = min(best[side], time.perf_counter() - started)
    return best, rows


async def integration_rows(
    http: httpx.AsyncClient, store: Store, org: str, rounds: int = 3
) -> list[dict[str, Any]]:
    """The rows of ``bench.__main__``'s summary table (its ``Row`` fields)."""
    scan_s, scanned = await measure_scan(http, store, org, rounds)
    bulk_s = await measure_bulk(http, store, org, rounds)
    ms = {side: f"{seconds * 1000:.0f} ms" for side, seconds in bulk_s.items()}
    bulk_ratio = bulk_s["bulk"] / bulk_s["singles"]
    scan_rate = {side: scanned[side] / scan_s[side] for side in scan_s}
    scan_ratio = scan_rate["gateway"] / scan_rate["raw"]
    return [
        {
            "name": f"bulkCreateContacts of {BULK} vs {BULK} createContact calls",
            "gateway": f"{ms['bulk']} (best of {rounds})",
            "raw": f"{ms['singles']} singles; raw insert_many {ms['raw']} "
            f"(bulk = {bulk_s['bulk'] / bulk_s['raw']:.1f}x raw)",
            "ratio": f"{bulk_ratio:.2f}x",
            "target": "≤ 0.2x",
            "met": bulk_ratio <= 0.2,
        },
        {
            "name": f"scanContacts, pages of 200 ({scanned['gateway']:,} contacts)",
            "gateway": f"{scan_rate['gateway']:,.0f} rows/s ({scan_s['gateway']:.2f} s)",
            "raw": f"{scan_rate['raw']:,.0f} rows/s ({scan_s['raw']:.2f} s, one cursor)",
            "ratio": f"{scan_ratio:.2f}x",
            "target": "≥ 0.5x",
            "met": scan_ratio >= 0.5 and scanned["gateway"] == scanned["raw"],
        },
    ]
