"""Collected examples: the prompt/response pairs (or chats) datasets are built from.

Examples arrive in bulk, so a batch is one event of a one-event aggregate, as for
inference records; the examples projection stores each example id once. A rating
can change later: each example's ratings are a small stream of their own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.batches import batch_id
from domain.ids import stable_id
from domain.values import MAX_NAME, MAX_TAGS, as_value_error, free_text, name_text, record_time

SOURCES = ("distillation", "task_history", "feedback", "import", "gateway")
ROLES = ("system", "user", "assistant", "tool", "developer")
MAX_CONTENT = 1_000_000
FIELDS = frozenset({"example_id", "prompt", "response", "system", "messages", "domain", "task_type", "rating",
                    "source", "model", "at", "tags"})  # fmt: skip


def validate_rating(rating: Any) -> int:
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise ValueError(f"rating must be a whole number from 1 to 5, got {rating!r}")
    return rating


def _text(example: dict[str, Any], name: str, *, required: bool, limit: int = MAX_NAME) -> str | None:
    """Names (ids, domains, models) refuse every control character; long content (limit
    MAX_CONTENT) keeps tabs and line breaks. Either is kept as given."""
    value = example.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise ValueError(f"{name} is required (a non-empty text)" if required else f"{name} must be a text")
    check = free_text if limit > MAX_NAME else _name
    return as_value_error(check, name, value, max_length=limit)


def _name(field: str, value: str, *, max_length: int) -> str:
    name_text(field, value, max_length=max_length)  # checked; kept untrimmed, as before
    return value


def _messages(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise ValueError("messages must be a non-empty list of {role, content} objects (OpenAI chat format)")
    out = []
    for i, m in enumerate(value):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise ValueError(f"messages[{i}] must be an object with a text role and content")
        if m["role"] not in ROLES:
            raise ValueError(f"messages[{i}] has unknown role {m['role']!r}: use one of {', '.join(ROLES)}")
        as_value_error(free_text, f"messages[{i}].content", m["content"], max_length=MAX_CONTENT)
        if isinstance(m.get("name"), str):
            as_value_error(name_text, f"messages[{i}].name", m["name"])
        out.append({k: m[k] for k in ("role", "content", "name") if isinstance(m.get(k), str)})
    return out


def parse_example(example: Any, now: datetime) -> dict[str, Any]:
    """A validated example as stored; raises ValueError with the reason."""
    if type(example) is not dict:
        raise ValueError(f"an example must be a JSON object, got {type(example).__name__}")
    if not FIELDS.issuperset(example):
        raise ValueError(f"unknown field(s) {', '.join(sorted(set(example) - FIELDS))}")
    messages = example.get("messages")
    if messages is not None:
        messages = _messages(messages)
        prompt = _text(example, "prompt", required=False, limit=MAX_CONTENT)
        response = _text(example, "response", required=False, limit=MAX_CONTENT)
    else:
        prompt = _text(example, "prompt", required=True, limit=MAX_CONTENT)
        response = _text(example, "response", required=True, limit=MAX_CONTENT)
    source = example.get("source", "import")
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    rating = example.get("rating")
    tags = example.get("tags") or []
    if not isinstance(tags, list) or len(tags) > MAX_TAGS or not all(isinstance(t, str) for t in tags):
        raise ValueError(f"tags must be a list of at most {MAX_TAGS} texts")
    for i, tag in enumerate(tags):
        as_value_error(name_text, f"tags[{i}]", tag)
    return {
        "example_id": _text(example, "example_id", required=True),
        "prompt": prompt,
        "response": response,
        "system": _text(example, "system", required=False, limit=MAX_CONTENT),
        "messages": messages,
        "domain": _text(example, "domain", required=False),
        "task_type": _text(example, "task_type", required=False),
        "rating": None if rating is None else validate_rating(rating),
        "source": source,
        "model": _text(example, "model", required=False),
        "at": record_time(example.get("at"), now),
        "tags": tags,
    }


class ExampleBatch(Aggregate):
    """One appended batch of collected examples (one event)."""

    class Recorded(Aggregate.Created):
        #: each: example_id, prompt, response, system, messages, domain, task_type, rating, source, model, at, tags
        examples: list[dict[str, Any]]
        actor: str

    @staticmethod
    def create_id(examples: list[dict[str, Any]]) -> UUID:
        return batch_id("example-batch", (e["example_id"] for e in examples))

    @classmethod
    def record(cls, examples: list[dict[str, Any]], *, actor: str) -> ExampleBatch:
        return cls._create(cls.Recorded, examples=examples, actor=actor)

    def __init__(self, examples: list[dict[str, Any]], actor: str) -> None:
        self.count = len(examples)


def rating_stream_id(example_id: str) -> UUID:
    return stable_id("example-rating", example_id)


class ExampleRating(Aggregate):
    """The later ratings of one example: a small stream, so a re-rating never touches a batch."""

    class Event(Aggregate.Event):
        example_id: str
        rating: int
        actor: str
        reason: str | None

    class Rated(Event):
        def apply(self, stream: ExampleRating) -> None:
            stream.rating = self.rating

    class Started(Event, Aggregate.Created):
        def apply(self, stream: Any) -> None:
            pass

    @staticmethod
    def create_id(example_id: str) -> UUID:
        return rating_stream_id(example_id)

    @classmethod
    def start(cls, example_id: str, rating: int, *, actor: str, reason: str | None) -> ExampleRating:
        return cls._create(cls.Started, example_id=example_id, rating=rating, actor=actor, reason=reason)

    def __init__(self, example_id: str, rating: int, actor: str, reason: str | None) -> None:
        self.example_id = example_id
        self.rating = rating

    def rate(self, rating: int, *, actor: str, reason: str | None) -> None:
        self.trigger_event(self.Rated, example_id=self.example_id, rating=rating, actor=actor, reason=reason)
