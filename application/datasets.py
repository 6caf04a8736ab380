"""Dataset use cases: collect examples, rate them, and record dataset builds."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from application.base import FtApplication, Recorded, validate_actor
from domain.batches import BatchRejected, parse_batch
from domain.datasets import Build, BuildSpec, Dataset
from domain.errors import InvalidInput, NotFound, RuleViolation
from domain.examples import ExampleBatch, ExampleRating, parse_example, rating_stream_id, validate_rating
from domain.values import name_text, validate_reason


@dataclass(frozen=True)
class ExamplesRecorded:
    accepted: int
    duplicates: list[str]
    recorded: Recorded | None


@dataclass(frozen=True)
class DatasetBuilt:
    build: Build
    recorded: Recorded
    #: an identical earlier build, returned instead of a new one (nothing was recorded)
    existing: bool = False


def spec_differences(stored: dict[str, Any], spec: BuildSpec) -> list[str]:
    """How a build request differs from the settings a dataset was built with, in words."""
    asked = asdict(spec)
    return [f"{k} {stored.get(k)!r} there, {asked[k]!r} here" for k in asked if stored.get(k) != asked[k]]


@dataclass(frozen=True)
class ExampleRated:
    example_id: str
    rating: int
    recorded: Recorded


class Datasets(FtApplication):
    name = "ft"

    def collect_examples(
        self,
        raw: Sequence[Any],
        *,
        actor: str,
        stored: Callable[[list[str]], set[str]],
        now: datetime | None = None,
    ) -> ExamplesRecorded:
        """Appends a batch of examples as one event; ids already stored are reported and left out."""
        actor = validate_actor(actor)
        now = now or datetime.now(UTC)
        parsed, errors = parse_batch(raw, lambda example: parse_example(example, now), "example_id", what="example")
        if errors:
            raise BatchRejected(errors, what="example")
        examples = [e for _, e in parsed]
        already = stored([e["example_id"] for e in examples])
        fresh = [e for e in examples if e["example_id"] not in already]
        if not fresh:
            return ExamplesRecorded(0, sorted(already), None)
        try:
            recorded = self.record(ExampleBatch.record(fresh, actor=actor))
        except IntegrityError:  # this very batch was appended already (a retry)
            return ExamplesRecorded(0, sorted([*already, *(e["example_id"] for e in fresh)]), None)
        return ExamplesRecorded(len(fresh), sorted(already), recorded)

    def rate_example(
        self, example_id: str, rating: Any, *, actor: str, exists: Callable[[str], bool], reason: str | None = None
    ) -> ExampleRated:
        actor = validate_actor(actor)
        try:
            rating = validate_rating(rating)
        except ValueError as e:
            raise InvalidInput(str(e) + ".") from None
        name_text("example_id", example_id)  # before the look-up: a NUL would reach the database
        reason = validate_reason(reason)
        if not exists(example_id):
            raise NotFound(f"Example {example_id!r} is not collected (or the projections have not caught up yet).")

        def attempt() -> ExampleRated:
            try:
                stream = self.get_aggregate(rating_stream_id(example_id))
                stream.rate(rating, actor=actor, reason=reason)
            except AggregateNotFoundError:
                stream = ExampleRating.start(example_id, rating, actor=actor, reason=reason)
            return ExampleRated(example_id, rating, self.record(stream))

        return self.retrying(attempt, what=f"Rating example {example_id!r}")

    def record_build(self, build: Build, *, actor: str, reason: str | None = None) -> DatasetBuilt:
        """Records a computed build; a dataset id is used once."""
        actor = validate_actor(actor)
        try:
            return DatasetBuilt(build, self.record(Dataset.record(build, actor=actor, reason=validate_reason(reason))))
        except IntegrityError:
            raise RuleViolation(
                f"Dataset {build.dataset_id!r} already exists: give another dataset_id (an identical build "
                "gets the same default id, since the id comes from the content hash)."
            ) from None
