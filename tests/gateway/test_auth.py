"""Bearer tokens, tenancy and permissions at the HTTP edge; health and readiness."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest

from gateway.app import create_app
from gateway.auth import ALL_PERMISSIONS
from gateway.settings import Settings
from resolvers.clock import now
from resolvers.contact_fields import ContactType
from resolvers.principal import Permission
from resolvers.store import Store
from tests.conftest import SECRET, Api, codes, refused_sockets_collected
from tests.factories import add_contact

QUERY = "query($id: ID!) { contact(id: $id) { id } }"
CREATE = """mutation($i: ContactInput!) {
  createContact(input: $i) { id firstName identifiers { value } }
}"""


def claims(**overrides: Any) -> dict[str, Any]:
    issued = int(time.time())
    base: dict[str, Any] = {
        "sub": "agent-1",
        "org": "acme",
        "permissions": list(ALL_PERMISSIONS),
        "iat": issued,
        "exp": issued + 600,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def hs256(payload: dict[str, Any], secret: str = SECRET) -> str:
    return jwt.encode(payload, secret, algorithm="HS256")


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def forged(alg: str, payload: dict[str, Any], signature: str = "c2lnbmF0dXJl") -> str:
    return f"{b64({'alg': alg, 'typ': 'JWT'})}.{b64(payload)}.{signature}"


def hmac_signed(alg: str, payload: dict[str, Any]) -> str:
    """Correctly signed with the gateway's secret, but with another HMAC algorithm."""
    digest = {"HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    signing_input = f"{b64({'alg': alg, 'typ': 'JWT'})}.{b64(payload)}"
    mac = hmac.new(SECRET.encode(), signing_input.encode(), digest).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


async def post_raw(api: Api, headers: dict[str, str]) -> httpx.Response:
    return await api.http.post(
        "/graphql", json={"query": QUERY, "variables": {"id": "x"}}, headers=headers
    )


def assert_unauthenticated(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    body = response.json()
    assert set(body) == {"errors"}
    assert len(body["errors"]) == 1
    error = body["errors"][0]
    assert set(error) == {"message", "extensions"}
    assert isinstance(error["message"], str)
    assert error["message"]
    assert error["extensions"] == {"code": "UNAUTHENTICATED"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer   "},
        {"Authorization": "Basic YWdlbnQ6cGFzc3dvcmQ="},
        {"Authorization": "Token " + hs256(claims())},
        {"Authorization": hs256(claims())},
        {"Authorization": "Bearer garbage"},
        {"Authorization": "Bearer a.b.c"},
        {"Authorization": "Bearer " + "x" * 10000},
    ],
    ids=[
        "missing",
        "empty",
        "bearer-no-token",
        "bearer-blank",
        "basic",
        "token-scheme",
        "no-scheme",
        "garbage",
        "garbage-segments",
        "huge",
    ],
)
async def test_bad_authorization_header_is_401(api: Api, headers: dict[str, str]) -> None:
    assert_unauthenticated(await post_raw(api, headers))


@pytest.mark.parametrize(
    "token",
    [
        hs256(claims(), secret="another-secret-" + "y" * 32),
        hs256(claims(exp=int(time.time()) - 3600)),
        hs256(claims(nbf=int(time.time()) + 3600)),
        hs256(claims(org=None)),
        hs256(claims(sub=None)),
        hs256(claims(exp=None)),
        hs256(claims(org="")),
        hs256(claims(org=42)),
        hs256(claims(sub=["agent"])),
        hs256(claims(permissions="externalContacts:*:*")),
        hs256(claims(permissions=[1, 2])),
        jwt.encode(claims(), None, algorithm="none"),
        forged("none", claims(), signature=""),
        forged("HS256", claims()),
        hmac_signed("HS512", claims()),
        hmac_signed("HS384", claims()),
        forged("RS256", claims()),
        forged("ES256", claims()),
    ],
    ids=[
        "wrong-secret",
        "expired",
        "not-yet-valid",
        "no-org",
        "no-sub",
        "no-exp",
        "empty-org",
        "int-org",
        "list-sub",
        "permissions-not-list",
        "permissions-not-strings",
        "alg-none",
        "alg-none-forged",
        "bad-signature",
        "hs512",
        "hs384",
        "rs256",
        "es256",
    ],
)
async def test_bad_token_is_401(api: Api, store: Store, token: str) -> None:
    assert_unauthenticated(await post_raw(api, {"Authorization": f"Bearer {token}"}))
    response = await api.post(CREATE, {"i": {"firstName": "A", "lastName": "B"}}, token=token)
    assert_unauthenticated(response)
    assert await store.contacts.count_documents({}) == 0


async def test_valid_token_is_accepted(api: Api) -> None:
    token = hs256(claims(permissions=["externalContacts:contact:view"]))
    response = await post_raw(api, {"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"contact": None}
    assert "errors" not in body
    # a token without permissions is authenticated, just not allowed anything
    token = hs256(claims(permissions=None))
    response = await post_raw(api, {"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert codes(response.json()["errors"]) == ["FORBIDDEN"]


async def test_recently_expired_token_within_leeway_is_accepted(api: Api) -> None:
    token = hs256(claims(exp=int(time.time()) - 5))
    response = await post_raw(api, {"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "granted", [["externalContacts:*:*"], ["externalContacts:contact:*"], ["*:*:*"]]
)
async def test_wildcard_permissions_grant(api: Api, granted: list[str]) -> None:
    data = await api.gql(
        CREATE, {"i": {"firstName": "Alexis", "lastName": "Smith"}}, permissions=granted
    )
    created = data["createContact"]
    data = await api.gql(QUERY, {"id": created["id"]}, permissions=granted)
    assert data["contact"] == {"id": created["id"]}


async def test_wildcard_only_matches_whole_segments(api: Api, store: Store) -> None:
    for granted in (["externalContacts:contact:*"], ["externalContacts:*"], ["external*:*:*"]):
        response = await api.post(
            "mutation($id: ID!) { promoteContact(id: $id) { id } }",
            {"id": "x"},
            permissions=granted,
        )
        assert response.status_code == 200
        assert codes(response.json()["errors"]) == ["FORBIDDEN"], granted
    response = await api.post(QUERY, {"id": "x"}, permissions=["externalContacts:*"])
    assert codes(response.json()["errors"]) == ["FORBIDDEN"]


async def test_forbidden_field_is_null_and_the_rest_is_returned(api: Api) -> None:
    created = (await api.gql(CREATE, {"i": {"firstName": "Alexis", "lastName": "Smith"}}))[
        "createContact"
    ]
    query = """query($id: ID!) {
      contact(id: $id) { id firstName journey { contactIds } }
      other: contact(id: $id) { id }
    }"""
    view_only = [str(Permission.CONTACT_VIEW)]
    response = await api.post(query, {"id": created["id"]}, permissions=view_only)
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {
        "contact": {"id": created["id"], "firstName": "Alexis", "journey": None},
        "other": {"id": created["id"]},
    }
    assert codes(body["errors"]) == ["FORBIDDEN"]
    assert body["errors"][0]["path"] == ["contact", "journey"]

    # with the session permission there is no error at all
    both = [*view_only, str(Permission.SESSION_VIEW)]
    response = await api.post(query, {"id": created["id"]}, permissions=both)
    assert "errors" not in response.json()


async def test_forbidden_root_fields_are_null_with_errors(api: Api) -> None:
    created = (await api.gql(CREATE, {"i": {"firstName": "Alexis", "lastName": "Smith"}}))[
        "createContact"
    ]
    query = """query($id: ID!) {
      contact(id: $id) { id }
      identifier(type: PHONE, value: "+18031230000") { value }
    }"""
    no_view = [p for p in ALL_PERMISSIONS if p != Permission.CONTACT_VIEW]
    response = await api.post(query, {"id": created["id"]}, permissions=no_view)
    body = response.json()
    assert body["data"] == {"contact": None, "identifier": None}
    assert codes(body["errors"]) == ["FORBIDDEN", "FORBIDDEN"]
    assert sorted(e["path"][0] for e in body["errors"]) == ["contact", "identifier"]
    for root in (
        '{ searchContacts(query: "alexis") { totalCount } }',
        '{ reverseLookup(value: "+18031230000") { id } }',
        '{ contacts(ids: ["x"]) { id } }',
    ):
        response = await api.post(root, permissions=no_view)
        body = response.json()
        assert body["data"] is None
        assert codes(body["errors"]) == ["FORBIDDEN"]


MUTATIONS: list[tuple[str, Permission, str]] = [
    (
        "createContact",
        Permission.CONTACT_ADD,
        'mutation { createContact(input: {firstName: "N", lastName: "N"}) { id } }',
    ),
    (
        "updateContact",
        Permission.CONTACT_EDIT,
        'mutation($id: ID!) { updateContact(id: $id, input: {firstName: "N"}) { id } }',
    ),
    ("deleteContact", Permission.CONTACT_DELETE, "mutation($id: ID!) { deleteContact(id: $id) }"),
    (
        "promoteContact",
        Permission.IDENTITY_PROMOTE,
        "mutation($id: ID!) { promoteContact(id: $id) { id } }",
    ),
    (
        "addNote",
        Permission.CONTACT_EDIT,
        'mutation($id: ID!) { addNote(contactId: $id, text: "hi") { id } }',
    ),
]


@pytest.mark.parametrize(
    ("name", "permission", "mutation"), MUTATIONS, ids=[m[0] for m in MUTATIONS]
)
async def test_mutation_without_its_permission_is_forbidden_and_writes_nothing(
    api: Api, store: Store, name: str, permission: Permission, mutation: str
) -> None:
    doc = await add_contact(
        store,
        kind=ContactType.IDENTIFIED,
        expires_at=now() + timedelta(days=1),
        firstName="Auto",
        lastName=None,
        cellPhone="+18031230000",
    )
    before = await store.contacts.find({}).to_list()
    lacking = [p for p in ALL_PERMISSIONS if p != permission]
    variables = {} if name == "createContact" else {"id": doc["_id"]}
    response = await api.post(mutation, variables, permissions=lacking)
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    assert codes(body["errors"]) == ["FORBIDDEN"]
    assert body["errors"][0]["path"] == [name]
    assert await store.contacts.find({}).to_list() == before
    assert await store.notes.count_documents({}) == 0
    assert await store.identifiers.count_documents({}) == 0

    # the same call with the permission goes through
    granted = [str(permission), str(Permission.CONTACT_VIEW)]
    response = await api.post(mutation, variables, permissions=granted)
    assert "errors" not in response.json(), response.json()


async def test_healthz_and_readyz(api: Api) -> None:
    response = await api.http.get("/healthz")
    assert response.status_code == 200
    response = await api.http.get("/readyz")
    assert response.status_code == 200


async def test_readyz_is_503_when_the_database_does_not_answer(settings: Settings) -> None:
    quick = settings.model_copy(update={"db_timeout_ms": 200})
    with refused_sockets_collected():
        app = create_app(quick, uri="mongodb://127.0.0.1:9/", secret=SECRET, ensure_indexes=False)
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                assert (await http.get("/healthz")).status_code == 200
                assert (await http.get("/readyz")).status_code == 503
        finally:
            await app.state.runtime.close()
