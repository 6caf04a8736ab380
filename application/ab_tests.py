"""A/B test use cases: create, record samples, conclude and abandon."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from application.base import FtApplication, Recorded, validate_actor
from domain.ab_testing import (
    ABTest,
    CallFeedback,
    SampleBatch,
    TestConfig,
    ab_test_id,
    feedback_outcome,
    parse_sample,
    validate_test_id,
)
from domain.batches import BatchRejected, parse_batch
from domain.errors import NotFound, RuleViolation
from domain.values import validate_reason


@dataclass(frozen=True)
class SamplesRecorded:
    accepted: int
    duplicates: list[str]
    recorded: Recorded | None


@dataclass(frozen=True)
class FeedbackGiven:
    call_id: str
    #: False: this call's feedback was counted before, and nothing was recorded now
    counted: bool
    recorded: Recorded | None


@dataclass(frozen=True)
class TestChanged:
    test_id: str
    recorded: Recorded


class ABTesting(FtApplication):
    name = "ft"

    def load(self, test_id: str) -> ABTest:
        validate_test_id(test_id)
        try:
            return self.get_aggregate(ab_test_id(test_id))
        except AggregateNotFoundError:
            raise NotFound(f"A/B test {test_id!r} does not exist: create it first (`ft-cli setup-ab-test`, or "
                           "POST /v1/ab-tests).") from None

    def create_test(self, *, actor: str, reason: str | None = None, check_model: Callable[[str, str], None]
                    | None = None, **settings: Any) -> TestChanged:  # fmt: skip
        """`check_model(arm, model)` refuses an arm's model (a registry version that does not exist)."""
        config = TestConfig.validate(**settings)
        actor = validate_actor(actor)
        if check_model is not None:
            for arm in ("model_a", "model_b"):
                check_model(arm, getattr(config, arm))
        test = ABTest.create(config, actor=actor, reason=validate_reason(reason))
        try:
            return TestChanged(config.test_id, self.record(test))
        except IntegrityError:
            raise RuleViolation(f"A/B test {config.test_id!r} already exists: choose another test_id.") from None

    def record_samples(
        self,
        test_id: str,
        raw: Sequence[Any],
        *,
        actor: str,
        stored: Callable[[str, list[str]], set[str]],
        now: datetime | None = None,
    ) -> SamplesRecorded:
        """Appends a batch of samples as one event; `stored` says which sample ids are counted already."""
        actor = validate_actor(actor)
        test = self.load(test_id)  # one small aggregate per batch, never the samples
        test.check_accepts_samples()
        config, now = test.config, now or datetime.now(UTC)
        samples, errors = parse_batch(raw, lambda sample: parse_sample(sample, config, now), "sample_id", what="sample")
        if errors:
            raise BatchRejected(errors, what="sample")
        already = stored(test_id, [s["sample_id"] for _, s in samples])
        fresh = [s for _, s in samples if s["sample_id"] not in already]
        if not fresh:
            return SamplesRecorded(0, sorted(already), None)
        try:
            recorded = self.record(SampleBatch.record(test_id, fresh, actor=actor))
        except IntegrityError:  # this very batch was appended already (a retry)
            return SamplesRecorded(0, sorted([*already, *(s["sample_id"] for s in fresh)]), None)
        return SamplesRecorded(len(fresh), sorted(already), recorded)

    def record_call_samples(self, test_id: str, samples: list[dict[str, Any]], *, actor: str) -> Recorded | None:
        """The gateway's calls of a running test as its samples (built by the gateway, not sent by a client).
        A test that ended meanwhile takes none; the same batch again is appended once."""
        try:
            self.load(test_id).check_accepts_samples()
        except (NotFound, RuleViolation):
            return None
        try:
            return self.record(SampleBatch.record(test_id, samples, actor=actor))
        except IntegrityError:
            return None

    def give_feedback(self, call: dict[str, Any], *, correct: Any = None, score: Any = None, actor: str,
                      reason: str | None = None) -> FeedbackGiven:  # fmt: skip
        """A call's outcome, counted once: the same call's feedback again records nothing."""
        outcome, value = feedback_outcome(correct, score)
        actor, reason = validate_actor(actor), validate_reason(reason)
        try:  # one aggregate per call: the store's key refuses a second feedback, no read needed
            recorded = self.record(CallFeedback.give(call, outcome, value, actor=actor, reason=reason))
        except IntegrityError:
            return FeedbackGiven(call["id"], False, None)
        return FeedbackGiven(call["id"], True, recorded)

    def conclude(
        self, test_id: str, result: dict[str, Any], position: int, *, actor: str, reason: str | None = None
    ) -> TestChanged:
        actor = validate_actor(actor)

        def attempt() -> TestChanged:
            test = self.load(test_id)
            test.conclude(result, position, actor=actor, reason=validate_reason(reason))
            return TestChanged(test_id, self.record(test))

        return self.retrying(attempt, what=f"Concluding {test_id!r}")

    def stop_challenger(self, test_id: str, breach: dict[str, Any], *, actor: str, reason: str) -> TestChanged:
        actor = validate_actor(actor)

        def attempt() -> TestChanged:
            test = self.load(test_id)
            test.stop_challenger(breach, actor=actor, reason=validate_reason(reason) or "guardrail")
            return TestChanged(test_id, self.record(test))

        return self.retrying(attempt, what=f"Stopping the challenger of {test_id!r}")

    def abandon(self, test_id: str, *, actor: str, reason: str | None = None) -> TestChanged:
        actor = validate_actor(actor)

        def attempt() -> TestChanged:
            test = self.load(test_id)
            test.abandon(actor=actor, reason=validate_reason(reason))
            return TestChanged(test_id, self.record(test))

        return self.retrying(attempt, what=f"Abandoning {test_id!r}")
