"""The base of every ft-lifecycle application service.

All areas (registry now; costs, A/B tests and datasets later) share one event
table, so the notification log gives one global order for projections and the
audit trail. The store itself is chosen by the environment that adapters/store.py
builds from FT_DATABASE_URL; nothing here does I/O of its own.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError

from domain.errors import ConcurrentChange, InvalidInput, PreconditionFailed
from domain.values import MAX_NAME, name_text

T = TypeVar("T")

#: How often a command is re-run after losing an optimistic-concurrency race.
#: Re-running is safe: every attempt reloads the aggregate and re-checks the rules.
COMMAND_ATTEMPTS = 12


@dataclass(frozen=True)
class Recorded:
    """What a command appended: the log position of its last event, for
    read-your-writes, and the aggregate's new version, for If-Match."""

    position: int
    aggregate_version: int


def replay(aggregate: Any, events: Iterable[Any]) -> Any:
    """The library's projector without its per-event Protocol isinstance check,
    which costs more than applying the event itself on Python 3.11."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


class FtApplication(Application):
    name = "ft"

    def get_aggregate(self, aggregate_id: UUID) -> Any:
        """Loads an aggregate from its latest snapshot (if any) and the events after it."""
        return self.repository.get(aggregate_id, projector_func=replay)

    def record(self, aggregate: Any, *also: Any) -> Recorded:
        """Saves the aggregate's new events (and those of `also`, in the same transaction)."""
        recordings = self.save(aggregate, *also)
        if not recordings:
            raise RuntimeError("a command recorded no event")  # a programming error, never user input
        return Recorded(position=recordings[-1].notification.id, aggregate_version=aggregate.version)

    @staticmethod
    def retrying(command: Callable[[], T], *, what: str) -> T:
        """Runs a command, re-running it when another writer appended to the same
        aggregate first. Gives up with a clear 409-style error after a few tries."""
        for attempt in range(COMMAND_ATTEMPTS):
            try:
                return command()
            except IntegrityError:
                time.sleep(random.uniform(0, 0.002 * (2 ** min(attempt, 6))))
        raise ConcurrentChange(f"{what} kept losing to concurrent changes; retry the request.")


def validate_actor(actor: str | None) -> str:
    if actor is None or not str(actor).strip():
        raise InvalidInput("actor is required: name who acts (for example --actor alice).")
    return name_text("actor", str(actor), max_length=MAX_NAME)


def check_expected_version(actual: int, expected: int | None, *, what: str) -> None:
    """Optimistic concurrency from the client's side (HTTP If-Match)."""
    if expected is not None and actual != expected:
        raise PreconditionFailed(
            f"{what} has changed: it is at version {actual}, the request expected {expected}. "
            "Read it again and retry with the new ETag."
        )
