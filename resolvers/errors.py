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
    code = "UNAUTHENTICATED"


class Forbidden(DomainError):
    code = "FORBIDDEN"


class NotFound(DomainError):
    code = "NOT_FOUND"


class BadUserInput(DomainError):
    code = "BAD_USER_INPUT"


class ReadOnly(DomainError):
    code = "READ_ONLY"


class MergeNotAllowed(DomainError):
    code = "MERGE_NOT_ALLOWED"


class Conflict(DomainError):
    code = "CONFLICT"


class QueryTooComplex(DomainError):
    code = "QUERY_TOO_COMPLEX"


class ServiceUnavailable(DomainError):
    code = "SERVICE_UNAVAILABLE"


class RateLimited(DomainError):
    """More requests than ``SCV_RATE_LIMIT_PER_MINUTE`` from one token subject and org."""

    code = "RATE_LIMITED"


class PersistedQueryNotFound(DomainError):
    """An automatic persisted query's hash the gateway does not know (yet): send the query."""

    code = "PERSISTED_QUERY_NOT_FOUND"


def _codes(kind: type[DomainError]) -> set[str]:
    return {kind.code}.union(*(_codes(sub) for sub in kind.__subclasses__()))


# Every code a domain error carries: the contract's codes.
DOMAIN_CODES: frozenset[str] = frozenset(_codes(DomainError))
