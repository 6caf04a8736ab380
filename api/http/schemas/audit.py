"""/v1/audit: the registry's events, who and why."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class AuditEntryOut(BaseModel):
    position: int
    timestamp: str
    model: str | None
    version: int | None
    event_type: str
    actor: str | None
    reason: str | None
    payload: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    next_cursor: str | None
