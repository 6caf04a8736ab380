"""Building datasets from the collected examples, reading them back and exporting their splits."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from application.base import Recorded
from application.datasets import DatasetBuilt, Datasets, spec_differences
from application.ledger import CostLedger
from domain.datasets import Build, BuildSpec, build_dataset, export_bytes
from domain.errors import InvalidInput, NotFound, RuleViolation
from projections.database import Database
from projections.datasets import emptying_filter, get_dataset, matching_examples, member_examples
from projections.examples import ExampleFilter

#: counts a chat's tokens as the target model's tokenizer does
TokenCounter = Callable[[Any], int]


class DatasetBuilds:
    def __init__(self, datasets: Datasets, ledger: CostLedger, db: Database, *,
                 count_for: Callable[[str], TokenCounter], current: Callable[[], None]) -> None:  # fmt: skip
        """`count_for(target_model)` gives that model's token counter; `current()` brings the
        projections to the log's head."""
        self.datasets = datasets
        self.ledger = ledger
        self.db = db
        self.count_for = count_for
        self.current = current

    def build(self, *, actor: str, reason: str | None = None, reuse_identical: bool = False,
              **settings: Any) -> DatasetBuilt:  # fmt: skip
        """Builds a dataset from every collected example up to the log's head that the filters keep.
        `reuse_identical`: a dataset with this id and these very settings is returned as it was built."""
        spec = BuildSpec.validate(**settings)
        count_tokens = self.count_for(spec.target_model)
        self.current()  # every example collected so far is in the projection
        if reuse_identical and spec.dataset_id is not None and (found := self._identical(spec, spec.dataset_id)):
            return found
        f = ExampleFilter(**spec.filters)
        examples = matching_examples(self.db, f)
        if not examples:
            culprit = emptying_filter(self.db, f)
            raise InvalidInput(f"The filters leave no example, so there is no dataset to build: {culprit} emptied it.")
        prices = [p for p in self.ledger.prices_at(datetime.now(UTC)) if p.training_per_1m is not None]
        build = build_dataset(spec, examples, count_tokens, prices)
        if reuse_identical and (found := self._identical(spec, build.dataset_id)):
            return found  # the id came from the content hash: the same examples, built the same way before
        return self.datasets.record_build(build, actor=actor, reason=reason)

    def _identical(self, spec: BuildSpec, dataset_id: str) -> DatasetBuilt | None:
        """The build recorded under `dataset_id` when it had these settings; a clear refusal when it had others."""
        found = get_dataset(self.db, dataset_id)
        if found is None:
            return None
        differences = spec_differences(found["spec"], spec)
        if differences:
            raise RuleViolation(f"Dataset {dataset_id!r} already exists with other settings ({'; '.join(differences)})"
                                ": give another id (--name), or its own settings to write its files again.")
        members = {split: [e["example_id"] for e in member_examples(self.db, dataset_id, split)]
                   for split in ("train", "test")}  # fmt: skip
        build = Build(dataset_id, spec, members["train"], members["test"], found["rejected_list"],
                      found["content_hash"], found["stats"])  # fmt: skip
        return DatasetBuilt(build, Recorded(found["position"], 1), existing=True)

    def get(self, dataset_id: str) -> dict[str, Any]:
        found = get_dataset(self.db, dataset_id)
        if found is None:
            raise NotFound(f"Dataset {dataset_id!r} does not exist: build one with `ft-cli prepare-dataset` "
                           "(or POST /v1/datasets).")
        return found

    def export(self, dataset_id: str, fmt: str, split: str) -> bytes:
        self.get(dataset_id)
        if split not in ("train", "test", "all"):
            raise InvalidInput(f"Unknown split {split!r}: use train, test or all.")
        if fmt not in ("openai", "alpaca", "jsonl"):
            raise InvalidInput(f"Unknown format {fmt!r}: use openai, alpaca or jsonl.")
        return export_bytes(member_examples(self.db, dataset_id, split), fmt)
