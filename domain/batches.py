"""Batches of records (inferences, examples, A/B samples, predictions): one parser for all of them.

A batch is parsed whole: every invalid record is listed with its place in the batch, and a batch
with any is rejected whole (`BatchRejected`), so a client fixes them all in one round trip. A record
id twice in one batch is an error, found here; ids stored by earlier batches are the caller's
business (it asks its projection). A batch's aggregate id derives from its record ids (`batch_id`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter, itemgetter
from typing import Any, TypeVar
from uuid import UUID

from domain.errors import InvalidInput
from domain.ids import stable_id

#: Records of one batch, and so of one event: 10,000 encode to a few MB.
MAX_BATCH = 10_000

R = TypeVar("R")


@dataclass(frozen=True)
class RecordError:
    """What is wrong with one record: its place in the batch (or line in a file) and why."""

    index: int
    message: str
    id: str | None = None


class BatchRejected(InvalidInput):
    """A batch with invalid records is rejected whole; `errors` lists every bad record."""

    slug = "invalid-records"
    title = "Invalid records"

    def __init__(self, errors: list[RecordError], *, what: str = "record", offset: int = 0) -> None:
        self.errors = errors
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(
            f"The batch was rejected, nothing was recorded: {len(errors)} invalid {what}(s); "
            f"{what} {first.index + offset}: {first.message}{more}."
        )


def parse_batch(
    raw: Sequence[Any],
    parse_one: Callable[[Any], R],
    key: str,
    *,
    what: str = "record",
    limit: int | None = MAX_BATCH,
) -> tuple[list[tuple[int, R]], list[RecordError]]:
    """Each valid record with its index in the batch, and an error for every invalid one (by index).

    `parse_one` validates one raw record and raises ValueError with the reason. `key` names the id
    field of a raw record and of what `parse_one` returns (a dict key, or an attribute); an id seen
    twice is an error at its second place. `what` names a record in messages; `limit` (None: any
    size, for a whole test set's predictions) also makes an empty batch an error.
    """
    if limit is not None:
        if len(raw) > limit:
            raise InvalidInput(f"A batch holds at most {limit:,} {what}s, got {len(raw):,}: split it.")
        if not raw:
            raise InvalidInput(f"The batch is empty: send at least one {what}.")
    # This runs for every record ingested: the loop does nothing but parse, and the ids are read
    # and compared by C loops (map, set) afterwards; a batch with repeated ids takes a slower path.
    records: list[R] = []
    errors: list[RecordError] = []
    keep = records.append
    for index, item in enumerate(raw):
        try:
            keep(parse_one(item))
        except ValueError as e:
            rid = item.get(key) if type(item) is dict else None
            errors.append(RecordError(index, str(e), rid if type(rid) is str else None))
    if not records:
        return [], errors
    failed = {e.index for e in errors}
    places = range(len(raw)) if not failed else [i for i in range(len(raw)) if i not in failed]
    ids = list(map(itemgetter(key) if type(records[0]) is dict else attrgetter(key), records))
    if len(set(ids)) == len(ids):
        return list(zip(places, records, strict=True)), errors
    return _first_of_each_id(places, ids, records, errors, key)


def _first_of_each_id(
    places: Sequence[int], ids: list[str], records: list[R], errors: list[RecordError], key: str
) -> tuple[list[tuple[int, R]], list[RecordError]]:
    parsed, seen = [], {}
    for index, rid, record in zip(places, ids, records, strict=True):
        first = seen.setdefault(rid, index)
        if first != index:
            errors.append(RecordError(index, f"{key} {rid!r} appears twice in the batch (also at {first})", rid))
        else:
            parsed.append((index, record))
    errors.sort(key=attrgetter("index"))
    return parsed, errors


def batch_id(kind: str, record_ids: Iterable[str], *, scope: str | None = None) -> UUID:
    """A batch's aggregate id: its kind, the stream it belongs to (`scope`: an A/B test, an evaluation)
    and a digest of its record ids in any order, so the same batch sent twice hits the store's key."""
    digest = hashlib.sha256("\n".join(sorted(record_ids)).encode()).hexdigest()
    return stable_id(kind, digest) if scope is None else stable_id(kind, scope, digest)
