"""Descriptions of the web-journey schema elements the code leaves undescribed, by schema
coordinate (joined into ``schema.descriptions.DESCRIPTIONS``)."""

from __future__ import annotations

from typing import Final

_PAGE = {
    "first": "How many items, at most; 1 to {most}.",
    "after": "The `endCursor` of the previous page; omitted for the first page.",
}
_SINCE_UNTIL = {
    "since": "Only sessions that started at or after this instant (inclusive).",
    "until": "Only sessions that started before this instant (exclusive).",
}
_CONNECTION = {
    "edges": "The page's edges, in the list's order.",
    "pageInfo": "Where the page is in the list, and the cursors to go on from.",
    "totalCount": "How many items the whole list holds (all pages).",
}
_CURSOR = "Opaque cursor of this edge: pass it as `after` to read on."


def _args(field: str, most: int) -> dict[str, str]:
    texts = {**_PAGE, **_SINCE_UNTIL}
    return {f"{field}({name}:)": text.format(most=most) for name, text in texts.items()}


WEB_DESCRIPTIONS: Final[dict[str, str]] = {
    **_args("Journey.webSessions", 200),
    **_args("Journey.timeline", 200),
    "WebSessionConnection": "A page of web sessions, newest first.",
    **{f"WebSessionConnection.{k}": v for k, v in _CONNECTION.items()},
    "WebSessionEdge": "A web session in a page.",
    "WebSessionEdge.cursor": _CURSOR,
    "WebSessionEdge.node": "The web session.",
    "WebSession.id": "The session's id (it may change when a late event joins two sessions).",
    "WebSession.startedAt": "Its first event.",
    "WebSession.endedAt": "Its last event.",
    "WebSession.pageViews": "How many PAGE_VIEW events it holds.",
    "WebSession.eventCount": "How many events it holds.",
    "WebSession.landingUrl": "The url of its first event that has one.",
    "WebSession.exitUrl": "The url of its last event that has one.",
    "WebSession.referrer": "The referrer of its first event that has one.",
    "WebSession.events(first:)": "How many events, at most; 1 to 500.",
    "WebSession.events(after:)": _PAGE["after"],
    "WebEventConnection": "A page of a session's events, oldest first.",
    **{f"WebEventConnection.{k}": v for k, v in _CONNECTION.items()},
    "WebEventEdge": "A web event in a page.",
    "WebEventEdge.cursor": _CURSOR,
    "WebEventEdge.node": "The web event.",
    "WebEvent.id": "The event's id.",
    "WebEvent.type": "What happened.",
    "WebEvent.at": "When it happened.",
    "WebEvent.url": "The page's url.",
    "WebEvent.title": "The page's title.",
    "WebEvent.referrer": "The page the visitor came from.",
    "WebEvent.name": "A CUSTOM event's name.",
    "WebEvent.attributes": "The event's own keys and values.",
    "WebEventType.PAGE_VIEW": "A page was shown.",
    "WebEventType.FORM_SUBMIT": "A form was sent; its `provided` data may identify the visitor.",
    "WebEventType.CUSTOM": "Anything else the site tracks, named by `name`.",
    "KeyValue.key": "The key.",
    "KeyValue.value": "Its value.",
    "KeyValueInput.key": "The key (at most 1,000 characters).",
    "KeyValueInput.value": "Its value (at most 1,000 characters).",
    "JourneyItemConnection": "A page of a timeline: conversations and web sessions, newest "
    "first by start.",
    "JourneyItemConnection.edges": _CONNECTION["edges"],
    "JourneyItemConnection.totalCount": "How many conversations and web sessions the timeline "
    "holds within since/until (all pages).",
    "JourneyItemEdge": "An item of a timeline and its cursor.",
    "JourneyItemConnection.pageInfo": _CONNECTION["pageInfo"],
    "JourneyItemEdge.cursor": _CURSOR + " One cursor kind for both conversations and sessions.",
    "JourneyItemEdge.node": "The conversation or web session.",
    "Mutation.recordWebEvents(events:)": "1 to 500 events; any bad one refuses the whole call "
    "(BAD_USER_INPUT) and nothing is written.",
    "WebEventInput.type": "What happened.",
    "WebEventInput.url": "The page's url (at most 1,000 characters).",
    "WebEventInput.title": "The page's title (at most 1,000 characters).",
    "WebEventInput.referrer": "The page the visitor came from (at most 1,000 characters).",
}
