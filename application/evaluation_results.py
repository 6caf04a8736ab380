"""Evaluations as people use them: scoring given predictions, reading a run back, attaching its
headline accuracy to a registry version, and comparing two runs pairwise."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

from application.base import Recorded
from application.evaluations import EvaluationRecorded, Evaluations
from application.registry import Registry
from domain.errors import NotFound, RuleViolation
from domain.evaluations import EvaluationSpec, compare_runs
from domain.values import decimal_value
from projections.database import Database
from projections.evaluations import get_evaluation
from projections.evaluations import predictions as evaluation_predictions

#: the modes whose accuracy can stand for a run, first found first
HEADLINE_MODES = ("exact", "substring", "classification")


@dataclass(frozen=True)
class EvaluationAttached:
    accuracy: float
    recorded: Recorded


class EvaluationResults:
    def __init__(self, evaluations: Evaluations, registry: Registry, db: Database, *,
                 current: Callable[[], None]) -> None:  # fmt: skip
        """`current()` brings the projections to the log's head."""
        self.evaluations = evaluations
        self.registry = registry
        self.db = db
        self.current = current

    def evaluate_offline(self, *, actor: str, reason: str | None = None, evaluation_id: str | None = None,
                         model: Any, model_type: Any, predictions: list[Any], modes: list[str] | None = None,
                         normalisation: dict[str, bool] | None = None, cost: Any = None,
                         source: dict[str, Any] | None = None) -> EvaluationRecorded:  # fmt: skip
        spec = EvaluationSpec.validate(evaluation_id=evaluation_id or "ev-" + uuid4().hex[:12], model=model,
                                       model_type=model_type, modes=modes or ["exact"], normalisation=normalisation,
                                       source=source)  # fmt: skip
        default_cost = None if cost is None else decimal_value("cost", cost)
        return self.evaluations.evaluate_offline(spec, predictions, actor=actor, reason=reason,
                                                 default_cost=default_cost)  # fmt: skip

    def get(self, evaluation_id: str) -> dict[str, Any]:
        found = get_evaluation(self.db, evaluation_id)
        if found is None:
            raise NotFound(f"Evaluation {evaluation_id!r} does not exist: list them with GET /v1/evaluations.")
        return found

    def attach(self, evaluation_id: str, model: str, version: int, *, actor: str,
               reason: str | None = None) -> EvaluationAttached:  # fmt: skip
        """The evaluation's headline accuracy becomes the registry version's, linked to the evaluation."""
        self.current()
        metrics = self.get(evaluation_id)["metrics"] or {}
        headline = next((metrics[k] for k in HEADLINE_MODES if k in metrics), None)
        if headline is None:
            raise RuleViolation(f"Evaluation {evaluation_id!r} has no accuracy (modes {metrics.get('modes')}): "
                                "evaluate with exact, substring or classification to attach one.")  # fmt: skip
        recorded = self.registry.attach_evaluation(model, version, accuracy=headline["accuracy"],
                                                   evaluation_id=evaluation_id, actor=actor, reason=reason)
        return EvaluationAttached(headline["accuracy"], recorded)

    def compare(self, base: str, candidate: str, *, roi: dict[str, Any] | None = None) -> dict[str, Any]:
        self.current()
        b, c = self.get(base), self.get(candidate)
        return compare_runs(b, evaluation_predictions(self.db, base), c, evaluation_predictions(self.db, candidate),
                            roi=roi)  # fmt: skip
