"""The process manager that carries out A/B tests' policies (domain/ab_policy.py) while they run.

Every few seconds, for each running test with a policy, it reads the live statistics (and the
challenger's p95 latency from the calls view) and acts: stops a challenger that breached a guardrail,
concludes on an always-valid winner (and deploys it when the policy says `conclude_and_deploy`), or
concludes an overdue test as inconclusive. Each act is an event whose actor names the policy
(`policy:TEST_ID`). Several servers may run it at once: the test's aggregate lets one of them act
and refuses the others (a concluded test cannot conclude again).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from application.ab_results import ABResults
from application.ab_tests import ABTesting
from application.registry import Registry
from domain.ab_policy import CONCLUDE, STOP_CHALLENGER, Decision, decide
from domain.errors import DomainError
from projections.ab_stats import running_tests_with_policy
from projections.database import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Acted:
    test_id: str
    decision: Decision
    deployed: int | None = None


def policy_actor(test_id: str) -> str:
    return f"policy:{test_id}"


class ABPolicies:
    def __init__(self, results: ABResults, ab: ABTesting, registry: Registry, db: Database, *,
                 challenger_p95: Callable[[str], float | None],
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:  # fmt: skip
        self.results, self.ab, self.registry, self.db = results, ab, registry, db
        self.challenger_p95, self.clock = challenger_p95, clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self, test_id: str) -> Acted | None:
        """Decides for one test now, and acts."""
        found = self.results.get(test_id)
        if found["status"] != "running":
            return None
        config = found["config"]
        now = self.clock()
        started = datetime.fromisoformat(found["created_at"])

        def decision_on(statistics: dict[str, Any]) -> Decision | None:
            return decide(config, statistics, challenger_stopped=found["challenger_stopped"] is not None,
                          challenger_p95_ms=self.challenger_p95(test_id), started_at=started, now=now)  # fmt: skip

        decision = decision_on(found["statistics"])
        if decision is None:
            return None
        actor = policy_actor(test_id)
        if decision.action == STOP_CHALLENGER:
            self.ab.stop_challenger(test_id, decision.breach or {}, actor=actor, reason=decision.reason)
            return Acted(test_id, decision)

        def frozen(statistics: dict[str, Any]) -> dict[str, Any] | None:
            again = decision_on(statistics)  # the same decision over the statistics at the log's head
            if again is None or again.action != decision.action:
                return None
            winner = again.winner
            return {"decided_by": actor, "verdict": again.reason, "winner": winner,
                    "winner_model": config.model_of(winner) if winner else None}  # fmt: skip

        self.results.conclude(test_id, actor=actor, reason=decision.reason, decision=frozen)
        deployed = None
        if decision.action == CONCLUDE and config.on_win == "conclude_and_deploy" and decision.winner:
            deployed = self._deploy(config.model_of(decision.winner), actor, decision.reason)
        return Acted(test_id, decision, deployed)

    def _deploy(self, model: str, actor: str, reason: str) -> int | None:
        name, at, number = model.partition("@")
        if not at or not number.isdigit():
            log.warning("A/B policy: the winner %r is not a registry version (NAME@VERSION); nothing deployed", model)
            return None
        deployed = self.registry.deploy(name, int(number), actor=actor, reason=f"A/B winner: {reason}"[:2000])
        return deployed.number

    def check_all(self) -> list[Acted]:
        acted = []
        for test_id in running_tests_with_policy(self.db):
            try:
                done = self.check(test_id)
            except DomainError as e:  # another server acted first, or the test ended meanwhile
                log.info("A/B policy of %s: %s", test_id, e.detail)
                continue
            except Exception:  # a bug must not stop the policies of every other test
                log.exception("A/B policy of %s failed", test_id)
                continue
            if done is not None:
                log.info("A/B policy of %s: %s (%s)", test_id, done.decision.action, done.decision.reason)
                acted.append(done)
        return acted

    # ------------------------------------------------------------- in the server

    def start(self, interval: float) -> None:
        if self._thread is not None:
            return
        self._stop.clear()  # a runtime may serve one app after another

        def run() -> None:
            while not self._stop.wait(interval):
                self.check_all()

        self._thread = threading.Thread(target=run, name="ab-policies", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

