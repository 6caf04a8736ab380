"""Evaluation use cases: record a scored evaluation from predictions, atomically."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from eventsourcing.persistence import IntegrityError

from domain import evaluation_metrics as m
from domain.application import FtApplication, Recorded, validate_actor
from domain.errors import RuleViolation
from domain.evaluations import Evaluation, EvaluationSpec, PredictionBatch, compute_metrics, parse_predictions
from domain.inference import MAX_BATCH, BatchRejected
from domain.registry import validate_reason


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
        rows, errors = parse_predictions(raw, default_cost=default_cost)
        if errors:
            raise BatchRejected(errors, what="prediction")
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
