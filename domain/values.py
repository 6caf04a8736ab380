"""Validation of plain values shared by the domain modules, with messages a user can act on.

Every value a client can send has a range the stores can hold, sums included (README, "Limits").
The HTTP schemas (api/http/schemas/) declare the same constants, so OpenAPI documents them.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from domain.errors import InvalidInput

# ------------------------------------------------------------------ limits

#: Tokens of one record (inference, prediction): 9 billion such records still sum inside 63 bits.
MAX_TOKENS = 10**9
#: Billed tokens of one training job (every epoch): a million jobs sum inside 63 bits.
MAX_TRAINING_TOKENS = 10**12
#: Counts of things: examples in a dataset, calls expected by an ROI question.
MAX_COUNT = 10**9
MAX_CALLS = 10**12
MAX_EPOCHS = 1_000
#: Money in USD (costs, prices, values): at most 10^12 with at most 18 decimal places.
MAX_AMOUNT = Decimal(10**12)
MAX_PLACES = 18
#: Hours of training, and milliseconds of latency (a million hours; about 11 days).
MAX_HOURS = Decimal(10**6)
MAX_LATENCY_MS = 1e9
#: Texts: names and identifiers; reasons; long free text (prompts, responses, predictions).
MAX_NAME = 256
MAX_REASON = 2_000
MAX_ID = 64
#: Tags of one record (an inference, an example).
MAX_TAGS = 20

#: Identifiers that name folders or streams: no '.', '..' or leading dot (they would climb folders).
ID_PATTERN = r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$"
ID_RULE = "1 to 64 characters of letters, digits, '.', '_' or '-' (no spaces), not starting with a dot"
#: Names, models, tags, actors, reasons: no control characters at all. Free text: tab, newline
#: and carriage return only. (Lone surrogates cannot be stored as UTF-8 either.)
NAME_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*$"
TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
_ID = re.compile(ID_PATTERN)
NAME_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
TEXT_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


# ----------------------------------------------------------------- numbers


def whole_number(field: str, value: Any, *, minimum: int = 0, maximum: int = MAX_COUNT) -> int:
    """An int in [minimum, maximum] (a bool or a float is refused: 1e21 is not a count)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{field} must be a whole number, got {_short(value)}.")
    _check_range(field, value, minimum, maximum)
    return value


def finite_number(field: str, value: Any, *, minimum: float = 0.0, maximum: float) -> float:
    """A float in [minimum, maximum]: NaN and infinities are refused."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if maximum - minimum <= 1:  # a share or a probability
        if not number or not (isinstance(value, int) or math.isfinite(value)) or not minimum <= value <= maximum:
            raise InvalidInput(f"{field} must be between {minimum:g} and {maximum:g}, got {_short(value)}.")
        return float(value)
    if not number or (isinstance(value, float) and not math.isfinite(value)):
        raise InvalidInput(f"{field} must be a number, got {_short(value)} (only finite numbers are stored).")
    _check_range(field, value, minimum, maximum)  # before float(): 10**400 would overflow it
    return float(value)


def _check_range(field: str, value: Any, minimum: Any, maximum: Any) -> None:
    if value < minimum:
        raise InvalidInput(f"{field} must be {minimum:g} or more, got {_short(value)}.")
    if value > maximum:
        raise InvalidInput(f"{field} must be at most {maximum:,}, got {_short(value)}.")


def decimal_value(
    field: str,
    value: Any,
    *,
    minimum: Decimal | None = Decimal(0),
    maximum: Decimal = MAX_AMOUNT,
    places: int = MAX_PLACES,
    usd: bool = False,
) -> Decimal:
    """An exact Decimal from a Decimal, int, float (through its shortest repr) or numeric text, with
    bounded size and decimal places (1e999999 would stay in every total, and spin any arithmetic).
    `usd` words the messages as an amount in USD."""
    kind = "a decimal amount in USD" if usd else "a number"
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, float, str)):
        raise InvalidInput(f"{field} must be {kind}, got {_short(value)}.")
    if isinstance(value, str) and len(value) > 100:
        raise InvalidInput(f"{field} must be {kind} of at most {places} decimal places, got a text of "
                           f"{len(value):,} characters.")  # fmt: skip
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise InvalidInput(f"{field} must be {kind}, got {_short(value)}.") from None
    low = "" if minimum is None else f" of {minimum} or more"
    if not number.is_finite():
        raise InvalidInput(f"{field} must be a finite {'amount' if usd else 'number'}{low}, got {value!r}.")
    if minimum is not None and number < minimum:
        what = f"a finite amount of {minimum} or more (USD)" if usd else f"{minimum} or more"
        raise InvalidInput(f"{field} must be {what}, got {_short(number)}.")
    if number > maximum:
        raise InvalidInput(f"{field} must be at most {maximum:,}, got {_short(number)}.")
    if number.as_tuple().exponent < -places:  # type: ignore[operator]
        raise InvalidInput(f"{field} takes at most {places} decimal places, got {_short(number)}.")
    return number


def _short(value: Any) -> str:
    """A value as the message quotes it: 2**100000 or a long text would flood it."""
    if isinstance(value, int) and value.bit_length() > 128:
        return f"a number of about 2^{value.bit_length()}"
    text = str(value) if isinstance(value, (int, float, Decimal)) else repr(value)
    return text if len(text) <= 40 else f"{text[:20]}...{text[-10:]}"


# ------------------------------------------------------------------- texts


def name_text(field: str, value: Any, *, max_length: int = MAX_NAME) -> str:
    """A required name (a model, a tag, an actor): trimmed, non-empty, no control characters."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{field} is required: give a non-empty text.")
    return _checked(field, value, max_length, NAME_FORBIDDEN).strip()


def optional_name(field: str, value: Any, *, max_length: int = MAX_NAME) -> str | None:
    """Like name_text, but a missing or blank value is None."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return name_text(field, value, max_length=max_length)


def validate_reason(reason: str | None) -> str | None:
    """Why a command was given, as its events keep it: optional (blank is None), one line of text."""
    if reason is None or not str(reason).strip():
        return None
    return name_text("reason", str(reason), max_length=MAX_REASON)


def free_text(field: str, value: Any, *, max_length: int) -> str:
    """Long text (a prompt, a response, a prediction), kept as given: no NUL or control
    characters other than tab, newline and carriage return."""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a text, got {type(value).__name__}.")
    return _checked(field, value, max_length, TEXT_FORBIDDEN)


def _checked(field: str, value: str, max_length: int, bad: re.Pattern[str]) -> str:
    if len(value) > max_length:
        raise InvalidInput(f"{field} is too long ({len(value):,} characters, at most {max_length:,}).")
    found = bad.search(value)
    if found:
        allowed = "" if bad is NAME_FORBIDDEN else " other than tab, newline and carriage return"
        raise InvalidInput(f"{field} contains the control character U+{ord(found.group()):04X} at position "
                           f"{found.start()}: remove it (no control characters{allowed}).")  # fmt: skip
    return value


def path_id(field: str, value: Any) -> str:
    """An id that names a folder or a stream: never '.', '..' or a hidden name."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        hint = " (a leading dot would name a hidden or parent folder)" if isinstance(value, str) and \
            value.startswith(".") else ""  # fmt: skip
        raise InvalidInput(f"Invalid {field} {value!r}: use {ID_RULE}, for example 'support-bot_v2'{hint}.")
    return value


def validate_model_name(name: Any) -> str:
    """A model name names folders and streams: a path id."""
    return path_id("model name", name)


def as_value_error(check: Any, *args: Any, **kwargs: Any) -> Any:
    """A check's InvalidInput as ValueError: batch parsers list it against the record."""
    try:
        return check(*args, **kwargs)
    except InvalidInput as e:
        raise ValueError(e.detail.rstrip(".")) from None


# ------------------------------------------------------------------- times


def aware_time(field: str, value: Any) -> datetime:
    """A datetime with its offset, as UTC."""
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidInput(f"{field} must be a time with its offset, e.g. 2026-12-01T00:00:00Z (got {value!r}).")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise InvalidInput(
            f"{field} {value.isoformat()} is out of range: use a time from year 1 to 9999 in UTC."
        ) from None


#: Every time a client gives is ISO 8601; messages show one.
TIME_EXAMPLE = "2026-11-26T14:02:00Z"


def utc_time(value: Any, now: datetime | None = None, *, field: str = "at") -> datetime:
    """The one reading of a given time: ISO 8601 text or a datetime, as an aware UTC datetime (a time
    without an offset is UTC); None is `now` where there is one. Raises ValueError, which batch parsers
    list against the record; `given_time` raises InvalidInput for a command or a query."""
    if value is None and now is not None:
        return now
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and len(value) <= 64:
        try:
            parsed = datetime.fromisoformat(value)  # Python 3.11 reads "Z" and offsets
        except ValueError:
            raise ValueError(f"{field} {value!r} is not an ISO 8601 time, e.g. {TIME_EXAMPLE}") from None
    else:
        raise ValueError(f"{field} must be an ISO 8601 time, got {value!r}"[:200])
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    if parsed.utcoffset() == timedelta(0):
        return parsed
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before the first UTC time there is
        shown = repr(value.isoformat() if isinstance(value, datetime) else value)
        raise ValueError(f"{field} {shown} is out of range: use a time from year 1 to 9999 in UTC") from None


def record_time(value: Any, now: datetime | None = None, *, field: str = "at") -> str:
    """A time as stored: UTC text with microseconds, so stored times sort as text (see utc_time)."""
    return utc_time(value, now, field=field).isoformat(timespec="microseconds")


def given_time(field: str, value: Any) -> datetime:
    """A time a command or a query was given (a CLI option, a query parameter), as UTC."""
    try:
        return utc_time(value, field=field)
    except ValueError as e:
        raise InvalidInput(f"{e}.") from None


def stored_time(field: str, value: Any) -> str | None:
    """A given time as stored (see record_time), for comparing with stored times; None stays None."""
    return None if value is None else given_time(field, value).isoformat(timespec="microseconds")
