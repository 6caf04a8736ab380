"""A/B tests as people read them: created against registered versions, live statistics while
running, and a result frozen at a log position when concluded."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from application.ab_tests import ABTesting, TestChanged
from application.registry import Registry
from domain.errors import InvalidInput, NotFound, RuleViolation
from projections.ab_stats import get_test
from projections.database import Database


class ABResults:
    def __init__(self, ab: ABTesting, registry: Registry, db: Database, *, head: Callable[[], int],
                 reach: Callable[[int], None]) -> None:  # fmt: skip
        """`head()` is the log's last position; `reach(position)` brings the projections there."""
        self.ab = ab
        self.registry = registry
        self.db = db
        self.head = head
        self.reach = reach

    def create(self, *, actor: str, reason: str | None = None, **settings: Any) -> TestChanged:
        return self.ab.create_test(actor=actor, reason=reason, check_model=self._check_arm, **settings)

    def _check_arm(self, arm: str, model: str) -> None:
        """`NAME@N` of a registered model must be one of its versions (other names are served elsewhere)."""
        name, _, version = model.rpartition("@")
        if not version.isdigit() or not name:
            return
        try:
            registered = self.registry.load(name)
        except (NotFound, InvalidInput):  # not a registry model: a name the serving side knows
            return
        try:
            registered.status_of(int(version))
        except NotFound as e:
            raise InvalidInput(f"{arm} {model!r} names a version that does not exist: {e.detail}") from None

    def get(self, test_id: str) -> dict[str, Any]:
        """A test's settings and status with its live statistics, or its frozen result once concluded."""
        from domain.ab_results import analyze  # scipy: loaded by the commands that compute

        found = get_test(self.db, test_id)
        if found is None:
            raise NotFound(f"A/B test {test_id!r} does not exist (or the projections have not caught up yet).")
        live = analyze(found["config"], *found["arms"])
        return found | {"statistics": found["result"] if found["status"] == "concluded" else live}

    def conclude(self, test_id: str, *, actor: str, reason: str | None = None,
                 decision: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None) -> TestChanged:  # fmt: skip
        """Freezes the result: the statistics of every sample up to the log's head, computed once. A policy's
        `decision(statistics)` gives the verdict and winner it concluded on (and may decline: None)."""
        from domain.ab_results import analyze

        self.ab.load(test_id).check_concludable()  # a clear 409 before any work
        position = self.head()
        self.reach(position)
        found = get_test(self.db, test_id)
        assert found is not None  # the projections include the test: they reached the head
        result = analyze(found["config"], *found["arms"]) | {"position": position}
        if decision is not None:
            decided = decision(result)
            if decided is None:
                raise RuleViolation(f"A/B test {test_id!r}: the policy's decision no longer holds at the log's head.")
            result |= decided
        return self.ab.conclude(test_id, result, position, actor=actor, reason=reason)
