"""High-volume records (inference costs, collected examples, A/B samples): each batch is appended
without reading prior state; the projections say which record ids are already counted. Also a
collected example's rating: the projection says whether the example exists."""

from __future__ import annotations

from typing import Any

from application.ab_tests import ABTesting, SamplesRecorded
from application.datasets import Datasets, ExampleRated, ExamplesRecorded
from application.ledger import CostLedger, InferencesRecorded
from projections.ab_stats import stored_sample_ids
from projections.costs import stored_inference_ids
from projections.database import Database
from projections.examples import stored_example_ids


class BatchIngestion:
    def __init__(self, ledger: CostLedger, datasets: Datasets, ab: ABTesting, db: Database) -> None:
        self.ledger = ledger
        self.datasets = datasets
        self.ab = ab
        self.db = db

    def record_inferences(self, records: list[Any], *, actor: str) -> InferencesRecorded:
        return self.ledger.record_inferences(
            records, actor=actor, stored=lambda ids: stored_inference_ids(self.db, ids)
        )

    def collect_examples(self, examples: list[Any], *, actor: str) -> ExamplesRecorded:
        return self.datasets.collect_examples(
            examples, actor=actor, stored=lambda ids: stored_example_ids(self.db, ids)
        )

    def rate_example(self, example_id: str, rating: Any, *, actor: str, reason: str | None = None) -> ExampleRated:
        """Rates one collected example (one the projection holds)."""
        return self.datasets.rate_example(
            example_id, rating, actor=actor, reason=reason, exists=lambda e: bool(stored_example_ids(self.db, [e]))
        )

    def record_samples(self, test_id: str, samples: list[Any], *, actor: str) -> SamplesRecorded:
        return self.ab.record_samples(
            test_id, samples, actor=actor, stored=lambda t, ids: stored_sample_ids(self.db, t, ids)
        )
