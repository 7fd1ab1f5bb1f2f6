"""Webhooks: where an org's changes are POSTed (gateway/webhook_delivery.py delivers them).

A webhook starts at the feed's position when it is created (it receives the changes after
it) and keeps its own ``position``: moved on only after a receiver answered 2xx, so delivery
is at least once across restarts. ``secret`` signs every body and is shown only once.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import secrets
import socket
from collections.abc import Sequence
from typing import Final
from urllib.parse import urlsplit

from bson import ObjectId

from resolvers import changes
from resolvers.clock import now
from resolvers.documents import WebhookDoc
from resolvers.errors import BadUserInput, NotFound
from resolvers.identifiers import MAX_STRING
from resolvers.principal import Principal
from resolvers.store import Store

MAX_WEBHOOKS: Final = 20  # per org
ALLOW_PRIVATE_ENV: Final = "SCV_WEBHOOK_ALLOW_PRIVATE"
# cloud metadata endpoints outside the link-local range
METADATA_HOSTS: Final = frozenset({"metadata.google.internal", "metadata", "instance-data"})


async def create_webhook(
    store: Store, principal: Principal, url: str, kinds: Sequence[str] | None
) -> WebhookDoc:
    """A webhook for the org's changes of ``kinds`` (every kind when omitted)."""
    await check_url(url, allow_private=os.environ.get(ALLOW_PRIVATE_ENV) == "1")
    org = principal.org
    if await store.webhooks.count_documents({"org": org}) >= MAX_WEBHOOKS:
        raise BadUserInput(f"at most {MAX_WEBHOOKS} webhooks per org")
    doc: WebhookDoc = {
        "_id": str(ObjectId()),
        "org": org,
        "url": url,
        "kinds": changes.kinds_of(kinds),
        "createdAt": now(),
        "createdBy": principal.sub,
        "secret": secrets.token_hex(32),
        "position": await changes.latest_stable(store, org),
        "failing": False,
        "lastError": None,
        "attempts": 0,
        "nextAttemptAt": now(),
    }
    await store.webhooks.insert_one(doc)
    return doc


async def list_webhooks(store: Store, org: str) -> list[WebhookDoc]:
    return await store.webhooks.find({"org": org}).sort("_id", 1).to_list(MAX_WEBHOOKS)


async def delete_webhook(store: Store, principal: Principal, webhook_id: str) -> bool:
    if not isinstance(webhook_id, str) or len(webhook_id) > MAX_STRING:
        raise NotFound(f"no webhook with id {webhook_id}")
    deleted = await store.webhooks.delete_one({"org": principal.org, "_id": webhook_id})
    if deleted.deleted_count == 0:
        raise NotFound(f"no webhook with id {webhook_id}")
    return True


async def check_url(url: str, *, allow_private: bool) -> None:
    """Only http(s) URLs with a host; unless ``allow_private``, none whose host is or resolves
    to a loopback, private, link-local, reserved or metadata address (BAD_USER_INPUT)."""
    if not isinstance(url, str) or len(url) > 2048:
        raise BadUserInput("a webhook URL is at most 2048 characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise BadUserInput("the webhook URL is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise BadUserInput("a webhook URL is an http or https URL with a host")
    if parts.username or parts.password:
        raise BadUserInput("a webhook URL carries no credentials")
    if allow_private:
        return
    if host.lower().rstrip(".") in METADATA_HOSTS:
        raise BadUserInput("the webhook URL points to a metadata service")
    for address in await _addresses(host):
        if _refused(address):
            raise BadUserInput(
                f"the webhook URL's host resolves to {address}, a loopback, private, "
                "link-local or metadata address"
            )


async def _addresses(host: str) -> list[str]:
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    try:
        infos = await asyncio.wait_for(
            asyncio.get_running_loop().getaddrinfo(host, None, proto=socket.IPPROTO_TCP), 5
        )
    except (OSError, TimeoutError):
        raise BadUserInput(f"the webhook URL's host {host} does not resolve") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _refused(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return bool(
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
        or ip == ipaddress.ip_address("100.100.100.200")  # Alibaba's metadata service
    )
