"""Validation of plain values shared by the domain modules, with messages a user can act on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from domain.errors import InvalidInput


def decimal_value(
    field: str, value: Any, *, minimum: Decimal | None = Decimal(0), maximum: Decimal | None = None
) -> Decimal:
    """An exact Decimal from a Decimal, int, float (through its shortest repr) or numeric text."""
    if isinstance(value, bool):
        raise InvalidInput(f"{field} must be a number, got {value!r}.")
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise InvalidInput(f"{field} must be a number, got {value!r}.") from None
    if not number.is_finite():
        raise InvalidInput(f"{field} must be a finite number, got {value!r}.")
    if minimum is not None and number < minimum:
        raise InvalidInput(f"{field} must be {minimum} or more, got {number}.")
    if maximum is not None and number > maximum:
        raise InvalidInput(f"{field} must be at most {maximum}, got {number}.")
    return number


def record_time(value: Any, now: datetime) -> str:
    """A record's `at`: ISO 8601 (UTC when it has no offset), or now; stored as UTC with microseconds.
    Raises ValueError, which batch parsers list against the record."""
    if value is None:
        parsed = now
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"at {value!r} is not an ISO 8601 time") from None
    else:
        raise ValueError(f"at must be an ISO 8601 time, got {value!r}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    elif parsed.utcoffset() != timedelta(0):
        parsed = parsed.astimezone(UTC)
    return parsed.isoformat(timespec="microseconds")
