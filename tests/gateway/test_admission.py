"""Admission: a process executes at most SCV_ACTIVE_REQUESTS (its share) GraphQL requests at
once; the others wait in arrival order, and one that cannot get a place within the database
deadline is refused with a 503 instead of waiting on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gateway.admission import Admission, places_per_process
from gateway.http_errors import RequestRefused
from gateway.settings import Settings
from resolvers.store import Store
from tests.conftest import SECRET, Api, api_of, gateway_app

CONTACT = 'mutation { createContact(input: {firstName: "Ada", lastName: "L"}) { id } }'


async def test_at_most_limit_requests_execute_and_the_rest_enter_in_arrival_order() -> None:
    admission = Admission(2)
    entered: list[int] = []
    inside = 0
    most_inside = 0
    release = asyncio.Event()

    async def request(n: int) -> None:
        nonlocal inside, most_inside
        async with admission.place():
            entered.append(n)
            inside += 1
            most_inside = max(most_inside, inside)
            await release.wait()
            inside -= 1

    tasks = []
    for n in range(6):
        tasks.append(asyncio.create_task(request(n)))
        await asyncio.sleep(0)  # each asks for its place before the next arrives
    await asyncio.sleep(0.01)
    assert entered == [0, 1] and admission.executing == 2 and admission.waiting == 4
    release.set()
    await asyncio.gather(*tasks)
    assert entered == [0, 1, 2, 3, 4, 5]
    assert most_inside == 2
    assert admission.executing == 0 and admission.waiting == 0


async def test_a_request_without_a_place_within_its_deadline_is_refused_and_leaks_nothing() -> None:
    admission = Admission(1)
    async with admission.place():
        with pytest.raises(RequestRefused) as refused:
            async with admission.place(within=0.05):
                raise AssertionError("admitted while the only place is held")
    assert refused.value.status == 503
    assert refused.value.code == "SERVICE_UNAVAILABLE"
    assert refused.value.headers == {"Retry-After": "1"}
    assert admission.waiting == 0 and admission.executing == 0
    async with admission.place(within=0.05):  # the place is free again: nothing was lost
        assert admission.executing == 1


@pytest.mark.parametrize(
    ("active", "workers", "places"), [(8, 1, 8), (8, 2, 4), (3, 2, 2), (1, 1, 2), (100, 3, 33)]
)
def test_each_worker_gets_its_share_of_the_places_and_at_least_two(
    active: int, workers: int, places: int
) -> None:
    settings = Settings(SCV_ACTIVE_REQUESTS=active, SCV_WORKERS=workers)
    assert places_per_process(settings) == places


@pytest.fixture
async def busy_api(
    mongo_uri: str, db_name: str, store: Store
) -> AsyncIterator[tuple[Api, Admission]]:
    """An app with 2 places (SCV_ACTIVE_REQUESTS=4, 2 workers) and a 200 ms deadline."""
    settings = Settings(
        SCV_DB_NAME=db_name,
        SCV_JWT_SECRET=SECRET,
        SCV_ACTIVE_REQUESTS=4,
        SCV_WORKERS=2,
        SCV_DB_TIMEOUT_MS=200,
    )
    app = gateway_app(mongo_uri, settings)
    async with api_of(app) as api:
        yield api, app.state.runtime.admission


async def test_the_gateway_refuses_with_503_while_every_place_stays_taken(
    busy_api: tuple[Api, Admission], store: Store
) -> None:
    api, admission = busy_api
    assert admission.limit == 2
    async with admission.place(), admission.place():  # two long requests hold both places
        response = await api.post(CONTACT)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert "busy" in error["message"]
    assert await store.contacts.count_documents({}) == 0  # refused before it wrote anything
    created = await api.gql(CONTACT)  # the places free: the same request goes through
    assert await store.contacts.count_documents({"_id": created["createContact"]["id"]}) == 1


async def test_a_request_waits_for_a_place_and_then_executes(
    busy_api: tuple[Api, Admission], store: Store
) -> None:
    api, admission = busy_api
    async with admission.place(), admission.place():
        waiting = asyncio.create_task(api.post(CONTACT))
        for _ in range(100):
            if admission.waiting == 1:
                break
            await asyncio.sleep(0.001)
        assert admission.waiting == 1 and not waiting.done()
        assert "scv_requests_waiting 1.0" in (await api.http.get("/metrics")).text
    response = await waiting  # a place came free well within its deadline
    assert response.status_code == 200, response.text
    assert await store.contacts.count_documents({}) == 1
    assert "scv_requests_waiting 0.0" in (await api.http.get("/metrics")).text
