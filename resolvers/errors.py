"""Domain errors. Each carries the contract's ``extensions.code``."""

from __future__ import annotations

from typing import ClassVar


class DomainError(Exception):
    """An error whose message is safe to show to the caller."""

    code: ClassVar[str] = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Unauthenticated(DomainError):
    """No bearer token, or one that is malformed, expired or badly signed (HTTP 401)."""

    code = "UNAUTHENTICATED"


class Forbidden(DomainError):
    """The token lacks the permission the field or operation needs; the field resolves to
    null and the rest of the response is still returned."""

    code = "FORBIDDEN"


class NotFound(DomainError):
    """A mutation names an id unknown in the caller's org (queries answer null instead)."""

    code = "NOT_FOUND"


class BadUserInput(DomainError):
    """Input the contract refuses: malformed values, out-of-range arguments, bad bodies."""

    code = "BAD_USER_INPUT"


class ReadOnly(DomainError):
    """A write to an ancestor (a non-canonical member of a merge set) that does not redirect
    to its canonical contact, such as addNote."""

    code = "READ_ONLY"


class MergeNotAllowed(DomainError):
    """A merge the rules refuse: two CURATED contacts, or a set beyond 52 members."""

    code = "MERGE_NOT_ALLOWED"


class Conflict(DomainError):
    """A concurrent change won; the caller may retry."""

    code = "CONFLICT"


class QueryTooComplex(DomainError):
    """A document over the depth, alias, token or cost limits, or a subscription over
    the per-connection limit."""

    code = "QUERY_TOO_COMPLEX"


class ServiceUnavailable(DomainError):
    """The database did not answer within the request's deadline."""

    code = "SERVICE_UNAVAILABLE"


class RateLimited(DomainError):
    """More requests than ``SCV_RATE_LIMIT_PER_MINUTE`` from one token subject and org."""

    code = "RATE_LIMITED"


class PersistedQueryNotFound(DomainError):
    """An automatic persisted query's hash the gateway does not know (yet): send the query."""

    code = "PERSISTED_QUERY_NOT_FOUND"


# GraphQL's own codes: a document that does not parse, or does not validate against the schema.
PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"


def _codes(kind: type[DomainError]) -> set[str]:
    return {kind.code}.union(*(_codes(sub) for sub in kind.__subclasses__()))


# Every code a domain error carries: the contract's codes.
DOMAIN_CODES: frozenset[str] = frozenset(_codes(DomainError))
