"""/v1/examples: collected examples and their ratings."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from api.http.schemas.common import Name, Reason, Request_, Tags, Text
from domain.batches import MAX_BATCH
from domain.examples import MAX_CONTENT


class ChatMessageIn(BaseModel):
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: Text = Field(max_length=MAX_CONTENT)
    name: Name | None = None


class ExampleIn(BaseModel):
    """One collected example: documented here; the service validates each and lists every bad one."""

    example_id: Name = Field(description="Client-chosen and unique: a retry is not stored twice")
    prompt: Text | None = Field(None, max_length=MAX_CONTENT, description="Required unless messages are given")
    response: Text | None = Field(None, max_length=MAX_CONTENT, description="Required unless messages are given")
    system: Text | None = Field(None, max_length=MAX_CONTENT)
    messages: list[ChatMessageIn] | None = Field(None, description="A multi-turn example, OpenAI chat format")
    domain: Name | None = None
    task_type: Name | None = None
    rating: int | None = Field(None, ge=1, le=5)
    source: Literal["distillation", "task_history", "feedback", "import"] = "import"
    model: Name | None = Field(None, description="The model that produced the response")
    at: datetime | None = None
    tags: Tags = []


class ExampleBatchIn(BaseModel):
    examples: list[ExampleIn] = Field(max_length=MAX_BATCH)


class RatingIn(Request_):
    # documented here, checked by the domain (its message says the range)
    rating: int = Field(description="1 to 5", json_schema_extra={"minimum": 1, "maximum": 5})
    reason: Reason = None


class ExamplesOut(BaseModel):
    accepted: int
    duplicates: list[str]
    position: int | None


class RatedOut(BaseModel):
    example_id: str
    rating: int
    position: int


class ExampleOut(BaseModel):
    example_id: str
    prompt: str | None
    response: str | None
    system: str | None
    messages: list[dict[str, Any]] | None
    domain: str | None
    task_type: str | None
    rating: int | None
    source: str
    model: str | None
    at: str
    tags: list[str]
    position: int


class ExamplePage(BaseModel):
    items: list[ExampleOut]
    next_cursor: str | None
