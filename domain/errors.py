"""One hierarchy of domain errors, each with a message a user can act on.

The HTTP layer maps each class to a status code once (api/http/errors.py) and
the CLI prints the message on one line; neither adds wording of its own.
"""

from __future__ import annotations


class DomainError(Exception):
    """A user's request that the domain refuses. Nothing is recorded."""

    #: short, stable slug used as the problem type (`/problems/<slug>`)
    slug = "domain-error"
    title = "Request refused"

    def __init__(self, detail: str, *, slug: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if slug is not None:
            self.slug = slug


class InvalidInput(DomainError):
    """A value that can never be valid (a malformed name, a negative size)."""

    slug = "invalid-input"
    title = "Invalid input"


class NotFound(DomainError):
    """The named model, version or projection does not exist."""

    slug = "not-found"
    title = "Not found"


class RuleViolation(DomainError):
    """Valid input that the current state forbids (deploying a FAILED version)."""

    slug = "rule-violation"
    title = "Not allowed in the current state"


class ConcurrentChange(DomainError):
    """Another command changed the same aggregate first, repeatedly."""

    slug = "concurrent-change"
    title = "Concurrent change"


class PreconditionFailed(DomainError):
    """The client's If-Match version is not the aggregate's current version."""

    slug = "precondition-failed"
    title = "Precondition failed"
