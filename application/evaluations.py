"""Evaluation use cases: record a scored evaluation from predictions, atomically."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from application.base import FtApplication, Recorded, validate_actor
from domain import evaluation_metrics as m
from domain.batches import MAX_BATCH, BatchRejected, parse_batch
from domain.errors import NotFound, RuleViolation
from domain.evaluations import (
    Evaluation,
    EvaluationSpec,
    PredictionBatch,
    compute_metrics,
    evaluation_stream_id,
    numbered,
    parse_prediction,
)
from domain.values import validate_reason


@dataclass(frozen=True)
class EvaluationRecorded:
    spec: EvaluationSpec
    metrics: dict[str, Any]
    recorded: Recorded


class Evaluations(FtApplication):
    name = "ft"

    def evaluate_offline(self, spec: EvaluationSpec, raw: Sequence[Any], *, actor: str, reason: str | None = None,
                         default_cost: Decimal | None = None) -> EvaluationRecorded:  # fmt: skip
        """Scores given predictions and records the evaluation, its predictions and its metrics in one transaction."""
        actor = validate_actor(actor)
        parsed, errors = parse_batch(  # a whole test set, of any size: recorded in batches of MAX_BATCH below
            numbered(raw), lambda row: parse_prediction(row, default_cost), "example_id", what="prediction", limit=None
        )
        if errors:
            raise BatchRejected(errors, what="prediction")
        rows = [row for _, row in parsed]
        metrics = compute_metrics(rows, spec.modes, m.Normalisation(**spec.normalisation))
        evaluation = Evaluation.create(spec, actor=actor, reason=validate_reason(reason))
        evaluation.complete(metrics, actor=actor)
        batches = [PredictionBatch.record(spec.evaluation_id, rows[i:i + MAX_BATCH], actor=actor)
                   for i in range(0, len(rows), MAX_BATCH)]  # fmt: skip
        try:
            recordings = self.save(evaluation, *batches)
        except IntegrityError:
            raise RuleViolation(f"Evaluation {spec.evaluation_id!r} already exists: give another id.") from None
        return EvaluationRecorded(spec, metrics, Recorded(recordings[-1].notification.id, evaluation.version))

    # ------------------------------------------------------------- live runs

    def start(self, spec: EvaluationSpec, *, actor: str, reason: str | None = None) -> Recorded:
        """A live run begins: its predictions arrive in batches as the endpoint answers."""
        evaluation = Evaluation.create(spec, actor=validate_actor(actor), reason=validate_reason(reason))
        try:
            return self.record(evaluation)
        except IntegrityError:
            raise RuleViolation(f"Evaluation {spec.evaluation_id!r} already exists: give another id.") from None

    def load(self, evaluation_id: str) -> Evaluation:
        try:
            return self.get_aggregate(evaluation_stream_id(evaluation_id))
        except AggregateNotFoundError:
            raise NotFound(f"Evaluation {evaluation_id!r} does not exist.") from None

    def record_predictions(self, evaluation_id: str, rows: list[dict[str, Any]], *, actor: str) -> Recorded | None:
        """One batch; a batch already recorded (a retried one) is not recorded twice."""
        try:
            recordings = self.save(PredictionBatch.record(evaluation_id, rows, actor=actor))
        except IntegrityError:
            return None
        return Recorded(recordings[-1].notification.id, 1)

    def complete(self, evaluation_id: str, metrics: dict[str, Any], *, actor: str) -> Recorded:
        def attempt() -> Recorded:
            evaluation = self.load(evaluation_id)
            if evaluation.status != "running":
                raise RuleViolation(f"Evaluation {evaluation_id!r} is already {evaluation.status}.")
            evaluation.complete(metrics, actor=actor)
            return self.record(evaluation)

        return self.retrying(attempt, what=f"Completing evaluation {evaluation_id!r}")
