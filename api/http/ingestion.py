"""Bulk ingestion routes (inferences, examples, A/B samples): one way to read a batch body and record it.

The body is parsed here, once, in the worker thread, with orjson (a 10,000-record body parses several
times faster than with json, in milliseconds), instead of by a pydantic model per record: the domain
validates each record and lists every bad one. The OpenAPI document still describes the body
(`json_body` in responses.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from fastapi import Request

from api.gc_pause import paused
from api.http.deps import CommandContext
from api.http.errors import ApiProblem

T = TypeVar("T")


def batch_of(body: bytes, field: str) -> list[Any]:
    """The list a body `{"<field>": [...]}` carries, unvalidated (the domain checks each record)."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ApiProblem(400, "malformed-json", "Malformed JSON", "The request body is not valid JSON.") from None
    batch = payload.get(field) if isinstance(payload, dict) else None
    if not isinstance(batch, list):
        raise ApiProblem(422, "invalid-input", "Invalid input", f'The body must be {{"{field}": [...]}}.')
    return batch


async def ingest(request: Request, cmd: CommandContext, field: str, record: Callable[[list[Any]], T]) -> T:
    """Reads the body's batch and runs `record` on it in the thread pool, in one hop. The projections
    are not brought up in the request (bulk ingestion): the background follower is woken instead, and
    readers pass `min_position`."""
    body = await request.body()

    @paused  # a batch allocates a lot and frees it all by refcount: no collector pauses
    def parse_and_record() -> T:
        return record(batch_of(body, field))

    return await cmd.run(parse_and_record, settle=False)
