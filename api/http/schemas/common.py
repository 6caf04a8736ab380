"""What every resource's bodies share: the field types with their limits, and the error body.

The limits of domain/values.py (README, "Limits") are declared again here so OpenAPI documents them and a
bad field is named before the domain sees it; the domain checks them all the same. Request and response
bodies are kept apart (what comes in is not what goes out), one module per resource beside this one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from domain.values import (
    ID_PATTERN,
    ID_RULE,
    MAX_AMOUNT,
    MAX_COUNT,
    MAX_LATENCY_MS,
    MAX_NAME,
    MAX_PLACES,
    MAX_REASON,
    MAX_TAGS,
    MAX_TOKENS,
    NAME_FORBIDDEN,
    NAME_PATTERN,
    TEXT_FORBIDDEN,
    TEXT_PATTERN,
)


def _refusing(bad: Callable[[str], Any], pattern: str, rule: str) -> tuple[Any, Any]:
    """The pattern in OpenAPI, and a message in words rather than a regular expression."""

    def check(value: str) -> str:
        if bad(value):
            raise PydanticCustomError("string_pattern_mismatch", rule)
        return value

    return Field(json_schema_extra={"pattern": pattern}), AfterValidator(check)


NO_CONTROLS = _refusing(NAME_FORBIDDEN.search, NAME_PATTERN, "must not contain control characters (such as NUL, "
                        "tab or newline)")  # fmt: skip
TEXT_CONTROLS = _refusing(TEXT_FORBIDDEN.search, TEXT_PATTERN, "must not contain NUL or control characters other "
                          "than tab, newline and carriage return")  # fmt: skip
_ID = re.compile(ID_PATTERN)
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME), *NO_CONTROLS]
Id = Annotated[str, Field(description=ID_RULE),
               *_refusing(lambda v: not _ID.fullmatch(v), ID_PATTERN, f"use {ID_RULE}")]  # fmt: skip
Text = Annotated[str, *TEXT_CONTROLS]
#: Documented only: the domain checks it, with a message that names the thing ("Invalid model name ...")
ModelNameDoc = Annotated[str, Field(description=ID_RULE, json_schema_extra={"pattern": ID_PATTERN})]

Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
VersionNumber = Annotated[int, Field(ge=1, le=MAX_COUNT)]
Tokens = Annotated[int, Field(ge=0, le=MAX_TOKENS)]
Usd = Annotated[Decimal, Field(ge=0, le=MAX_AMOUNT, decimal_places=MAX_PLACES, description="USD")]
LatencyMs = Annotated[float, Field(ge=0, le=MAX_LATENCY_MS, allow_inf_nan=False)]
Share = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Tags = Annotated[list[Name], Field(max_length=MAX_TAGS)]

Reason = Annotated[Annotated[str, Field(max_length=MAX_REASON), *NO_CONTROLS] | None,
                   Field(description="Why: kept in the audit trail")]  # fmt: skip
Position = Annotated[int, Field(description="Log position of the last event appended; pass as min_position to read it")]
Timestamp = Annotated[str | None, Field(description="UTC, ISO 8601", examples=["2026-11-26T14:02:00.000000+00:00"])]


class Request_(BaseModel):
    """A request body: an unknown field is refused (a typo must not pass silently)."""

    model_config = ConfigDict(extra="forbid")


# Every error answer (application/problem+json, RFC 9457; api/http/errors.py). No docstring: it would
# become the schema's description in the OpenAPI document.
class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = None
