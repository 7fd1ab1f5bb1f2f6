"""Content negotiation of ``/graphql``: which JSON media type answers, and who gets GraphiQL.

``application/graphql-response+json`` (the GraphQL-over-HTTP spec's own type) is used when the
``Accept`` header ranks it at least as high as ``application/json``; then a request error
(parse, validation, operation selection) is HTTP 400 without ``data``. Everything else gets
``application/json``, whose statuses stay as they were (request errors are 200).
"""

from __future__ import annotations

from typing import Final

GRAPHQL_RESPONSE_JSON: Final = "application/graphql-response+json"
JSON: Final = "application/json"
HTML: Final = "text/html"


def _ranks(accept: str | None) -> dict[str, float]:
    """``media range → q`` of an Accept header (malformed parts are skipped)."""
    ranks: dict[str, float] = {}
    for part in (accept or "").split(","):
        media, *options = (piece.strip() for piece in part.split(";"))
        if not media:
            continue
        q = 1.0
        for option in options:
            name, _, value = option.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        ranks[media.lower()] = max(q, ranks.get(media.lower(), 0.0))
    return ranks


def _quality(ranks: dict[str, float], media: str) -> float:
    """How much ``media`` is wanted: its own entry, else its type's wildcard, else ``*/*``."""
    if media in ranks:
        return ranks[media]
    kind = media.split("/", 1)[0]
    return ranks.get(f"{kind}/*", ranks.get("*/*", 0.0))


def response_media_type(accept: str | None) -> str:
    """The media type of a GraphQL response for this ``Accept`` header."""
    ranks = _ranks(accept)
    wanted = ranks.get(GRAPHQL_RESPONSE_JSON, 0.0)
    if wanted > 0 and wanted >= _quality(ranks, JSON):
        return GRAPHQL_RESPONSE_JSON
    return JSON


def prefers_html(accept: str | None) -> bool:
    """A browser's navigation: ``text/html`` named, and ranked above both JSON types."""
    ranks = _ranks(accept)
    html = ranks.get(HTML, 0.0)
    return html > 0 and html > max(_quality(ranks, JSON), ranks.get(GRAPHQL_RESPONSE_JSON, 0.0))
