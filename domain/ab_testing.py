"""A/B tests of two models on live traffic: configuration, assignment, samples and conclusion.

A test is a small aggregate (created, concluded or abandoned). Samples are the
high-volume path: a batch is one event of a one-event aggregate, as for
inference records, and the statistics projection keeps per-arm sufficient
statistics. Concluding computes the result once and freezes it in the event,
with the log position it covers, so later samples or later code never change it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.batches import batch_id
from domain.errors import InvalidInput, RuleViolation
from domain.ids import stable_id
from domain.values import (
    MAX_COUNT,
    MAX_LATENCY_MS,
    as_value_error,
    decimal_value,
    finite_number,
    free_text,
    name_text,
    path_id,
    record_time,
)

MATCH_MODES = ("exact", "substring")
ON_WIN = ("none", "conclude", "conclude_and_deploy")
#: the longest a test may run (ten years)
MAX_DURATION_S = 10 * 365 * 86_400.0
ARMS = ("a", "b")
MAX_TEXT = 100_000
#: Winner weights are relative: any scale up to this one
MAX_WEIGHT = 1_000.0


def ab_test_id(test_id: str) -> UUID:
    return stable_id("ab-test", test_id)


def validate_test_id(test_id: Any) -> str:
    return path_id("test id", test_id)


def assign(test_id: str, unit: str, split: float) -> str:
    """The arm of a unit (a user, a session): a hash of test id and unit, so it is
    deterministic and sticky and needs no write; a share `split` of units gets arm b."""
    digest = hashlib.sha256(f"{test_id}\x00{unit}".encode()).digest()
    return "b" if int.from_bytes(digest[:8], "big") / 2**64 < split else "a"


@dataclass(frozen=True)
class TestConfig:
    test_id: str
    model_a: str
    model_b: str
    split: float = 0.5
    alpha: float = 0.05
    min_samples: int = 30
    weight_accuracy: float = 0.6
    weight_latency: float = 0.2
    weight_cost: float = 0.2
    match_mode: str = "exact"
    #: the registered model whose gateway calls the test splits: given for arms of two models, and found
    #: by itself when both arms are versions of one model (`support-bot@1` against `support-bot@2`)
    gateway_model: str | None = None
    #: the policy: what an always-valid winner does, the challenger's guardrails, the longest run
    on_win: str = "none"
    guardrail_error_rate: float | None = None
    guardrail_p95_ms: float | None = None
    max_duration_s: float | None = None

    @property
    def has_policy(self) -> bool:
        return self.on_win != "none" or self.max_duration_s is not None or self.guardrail_error_rate is not None \
            or self.guardrail_p95_ms is not None  # fmt: skip

    @classmethod
    def validate(cls, **fields: Any) -> TestConfig:
        defaults = cls.__dataclass_fields__
        values = {k: fields.get(k) if fields.get(k) is not None else defaults[k].default for k in defaults}
        unknown = set(fields) - set(defaults)
        if unknown:
            raise InvalidInput(f"Unknown test settings: {', '.join(sorted(unknown))}.")
        validate_test_id(values["test_id"])
        for arm in ("model_a", "model_b"):
            values[arm] = name_text(arm, values[arm])
        if values["model_a"] == values["model_b"]:
            raise InvalidInput("model_a and model_b must differ: an A/B test compares two models.")
        split = _number("split", values["split"], maximum=1.0)
        if not 0 < split < 1:
            raise InvalidInput(f"split must be between 0 and 1 (the share of units sent to model_b), got {split}.")
        alpha = _number("alpha", values["alpha"], maximum=0.5)
        if not 0 < alpha < 0.5:
            raise InvalidInput(f"alpha must be between 0 and 0.5, got {alpha}.")
        min_samples = values["min_samples"]
        if isinstance(min_samples, bool) or not isinstance(min_samples, int) or not 1 <= min_samples <= MAX_COUNT:
            raise InvalidInput(
                f"min_samples must be a whole number from 1 to {MAX_COUNT:,} (100+ is recommended), "
                f"got {min_samples!r}."
            )
        weights = [_number(k, values[k], maximum=MAX_WEIGHT) for k in ("weight_accuracy", "weight_latency",
                                                                       "weight_cost")]  # fmt: skip
        if sum(weights) <= 0:
            raise InvalidInput("Winner weights must be 0 or more and not all 0.")
        if values["match_mode"] not in MATCH_MODES:
            raise InvalidInput(f"match_mode must be one of {', '.join(MATCH_MODES)}, got {values['match_mode']!r}.")
        gateway_model = values["gateway_model"]
        if gateway_model is not None:
            gateway_model = path_id("gateway_model", gateway_model)
        if values["on_win"] not in ON_WIN:
            raise InvalidInput(f"on_win must be one of {', '.join(ON_WIN)}, got {values['on_win']!r}.")
        limits = {}
        for name, maximum in (("guardrail_error_rate", 1.0), ("guardrail_p95_ms", float(MAX_LATENCY_MS)),
                              ("max_duration_s", MAX_DURATION_S)):  # fmt: skip
            value = values[name]
            limits[name] = None if value is None else _number(name, value, maximum=maximum)
            if limits[name] is not None and limits[name] <= 0:
                raise InvalidInput(f"{name} must be above 0, got {value!r}.")
        return cls(
            test_id=values["test_id"], model_a=values["model_a"], model_b=values["model_b"],
            split=split, alpha=alpha, min_samples=min_samples, weight_accuracy=weights[0],
            weight_latency=weights[1], weight_cost=weights[2], match_mode=values["match_mode"],
            gateway_model=gateway_model or same_model(values["model_a"], values["model_b"]),
            on_win=values["on_win"], **limits,
        )  # fmt: skip

    def model_of(self, arm: str) -> str:
        return self.model_a if arm == "a" else self.model_b


def same_model(model_a: str, model_b: str) -> str | None:
    """The registered model both arms are versions of (`NAME@N` each), if they are."""
    names = []
    for arm in (model_a, model_b):
        name, at, number = arm.partition("@")
        if not at or not number.isdigit():
            return None
        names.append(name)
    return names[0] if names[0] == names[1] else None


def call_sample(call_id: str, arm: str, *, latency_ms: float, cost: str | None, at: str, failed: bool
                ) -> dict[str, Any]:  # fmt: skip
    """A gateway call as a sample of its arm: its outcome (correct) comes later, with feedback."""
    return {"sample_id": call_id, "arm": arm, "correct": None, "latency_ms": latency_ms, "cost": cost or "0",
            "at": at, "prediction": None, "reference": None, "error": failed}  # fmt: skip


def _number(field: str, value: Any, *, maximum: float) -> float:
    return finite_number(field, value, maximum=maximum)


# ------------------------------------------------------------------ samples


def is_correct(prediction: str, reference: str, mode: str) -> bool:
    """exact: equal after trimming; substring: the reference contains the prediction (the seed's rule)."""
    prediction, reference = prediction.strip(), reference.strip()
    return prediction == reference if mode == "exact" else bool(prediction) and prediction in reference


def parse_sample(sample: Any, config: TestConfig, now: datetime) -> dict[str, Any]:
    """A validated sample as stored in the event; raises ValueError with the reason."""
    if type(sample) is not dict:
        raise ValueError(f"a sample must be a JSON object, got {type(sample).__name__}")
    unknown = set(sample) - {"sample_id", "arm", "model", "prediction", "reference", "correct", "latency_ms",
                             "cost", "at"}  # fmt: skip
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))}")
    sid = sample.get("sample_id")
    if not isinstance(sid, str) or not sid.strip():
        raise ValueError("sample_id is required (a non-empty text): it makes retries safe")
    as_value_error(name_text, "sample_id", sid)
    arm = sample.get("arm")
    model = sample.get("model")
    if arm is None and model is not None:
        arm = "a" if model == config.model_a else "b" if model == config.model_b else None
        if arm is None:
            raise ValueError(f"model {model!r} is not in this test (arms: {config.model_a!r}, {config.model_b!r})")
    if arm not in ARMS:
        raise ValueError(f"arm must be 'a' or 'b' (or give the arm's model), got {arm!r}")
    if model is not None and model != config.model_of(arm):
        raise ValueError(f"model {model!r} is not arm {arm}'s model ({config.model_of(arm)!r})")
    prediction, reference, correct = sample.get("prediction"), sample.get("reference"), sample.get("correct")
    for name, text in (("prediction", prediction), ("reference", reference)):
        if text is not None:
            as_value_error(free_text, name, text, max_length=MAX_TEXT)
    if correct is None:
        if reference is None or prediction is None:
            raise ValueError("give correct, or a prediction and a reference to compare")
        correct = is_correct(prediction, reference, config.match_mode)
    elif not isinstance(correct, bool):
        raise ValueError(f"correct must be true or false, got {correct!r}")
    latency = as_value_error(finite_number, "latency_ms", sample.get("latency_ms", 0), maximum=MAX_LATENCY_MS)
    cost = as_value_error(decimal_value, "cost", sample.get("cost", 0))
    return {
        "sample_id": sid, "arm": arm, "correct": correct, "latency_ms": float(latency), "cost": str(cost),
        "at": record_time(sample.get("at"), now), "prediction": prediction, "reference": reference,
    }  # fmt: skip


class SampleBatch(Aggregate):
    """One appended batch of A/B samples (one event)."""

    class Recorded(Aggregate.Created):
        test_id: str
        #: each: sample_id, arm, correct (None: not known yet), latency_ms, cost (decimal text), at, prediction,
        #: reference; a gateway call's sample also has error (it failed, or fell back)
        samples: list[dict[str, Any]]
        actor: str

    @staticmethod
    def create_id(test_id: str, samples: list[dict[str, Any]]) -> UUID:
        return batch_id("ab-samples", (s["sample_id"] for s in samples), scope=test_id)

    @classmethod
    def record(cls, test_id: str, samples: list[dict[str, Any]], *, actor: str) -> SampleBatch:
        return cls._create(cls.Recorded, test_id=test_id, samples=samples, actor=actor)

    def __init__(self, test_id: str, samples: list[dict[str, Any]], actor: str) -> None:
        self.count = len(samples)


# -------------------------------------------------------------------- test


class ABTest(Aggregate):
    class Event(Aggregate.Event):
        test_id: str
        actor: str
        reason: str | None

    class Created(Event, Aggregate.Created):
        model_a: str
        model_b: str
        split: float
        alpha: float
        min_samples: int
        weight_accuracy: float
        weight_latency: float
        weight_cost: float
        match_mode: str
        #: absent from tests created before the gateway split traffic, as the policy's fields
        gateway_model: str | None
        on_win: str
        guardrail_error_rate: float | None
        guardrail_p95_ms: float | None
        max_duration_s: float | None

        def apply(self, aggregate: Any) -> None:
            pass

    class ChallengerStopped(Event):
        """The challenger breached a guardrail: the gateway sends it no more calls."""

        breach: dict[str, Any]

        def apply(self, test: ABTest) -> None:
            test.challenger_stopped = True

    class Concluded(Event):
        #: the log position the frozen result covers: samples after it are not in it
        position: int
        #: the statistics, scores and verdict, as computed when concluding
        result: dict[str, Any]

        def apply(self, test: ABTest) -> None:
            test.status = "concluded"
            test.ended = (self.timestamp, self.actor)

    class Abandoned(Event):
        def apply(self, test: ABTest) -> None:
            test.status = "abandoned"
            test.ended = (self.timestamp, self.actor)

    @staticmethod
    def create_id(test_id: str) -> UUID:
        return ab_test_id(test_id)

    @classmethod
    def create(cls, config: TestConfig, *, actor: str, reason: str | None = None) -> ABTest:
        fields = {k: getattr(config, k) for k in config.__dataclass_fields__}
        return cls._create(cls.Created, actor=actor, reason=reason, **fields)

    def __init__(
        self,
        test_id: str,
        model_a: str,
        model_b: str,
        split: float,
        alpha: float,
        min_samples: int,
        weight_accuracy: float,
        weight_latency: float,
        weight_cost: float,
        match_mode: str,
        actor: str,
        reason: str | None,
        gateway_model: str | None = None,
        on_win: str = "none",
        guardrail_error_rate: float | None = None,
        guardrail_p95_ms: float | None = None,
        max_duration_s: float | None = None,
    ) -> None:
        self.config = TestConfig(
            test_id, model_a, model_b, split, alpha, min_samples, weight_accuracy, weight_latency, weight_cost,
            match_mode, gateway_model, on_win, guardrail_error_rate, guardrail_p95_ms, max_duration_s,
        )  # fmt: skip
        self.status = "running"
        self.challenger_stopped = False
        #: when and by whom it was concluded or abandoned
        self.ended: tuple[datetime, str] | None = None

    def _ensure_running(self, doing: str) -> None:
        if self.status != "running":
            when = "" if self.ended is None else f" on {self.ended[0]:%Y-%m-%d %H:%M:%S} UTC by {self.ended[1]}"
            raise RuleViolation(f"A/B test {self.config.test_id!r} is {self.status} already{when}: cannot {doing}.")

    def check_accepts_samples(self) -> None:
        self._ensure_running("record samples (its result is final)")

    def check_concludable(self) -> None:
        self._ensure_running("conclude it again (its result is final)")

    def conclude(self, result: dict[str, Any], position: int, *, actor: str, reason: str | None = None) -> None:
        self.check_concludable()
        self.trigger_event(self.Concluded, test_id=self.config.test_id, actor=actor, reason=reason,
                           position=position, result=result)  # fmt: skip

    def stop_challenger(self, breach: dict[str, Any], *, actor: str, reason: str) -> None:
        self._ensure_running("stop its challenger")
        if self.challenger_stopped:
            raise RuleViolation(f"A/B test {self.config.test_id!r}'s challenger is stopped already.")
        self.trigger_event(self.ChallengerStopped, test_id=self.config.test_id, actor=actor, reason=reason,
                           breach=breach)  # fmt: skip

    def abandon(self, *, actor: str, reason: str | None = None) -> None:
        self._ensure_running("abandon it")
        self.trigger_event(self.Abandoned, test_id=self.config.test_id, actor=actor, reason=reason)


# ------------------------------------------------------------------ feedback


def feedback_id(call_id: str) -> UUID:
    return stable_id("call-feedback", call_id)


def feedback_outcome(correct: Any, score: Any) -> tuple[bool, float | None]:
    """`correct` (true or false), or `score` from 0 to 1 (correct when at least 0.5); exactly one."""
    if (correct is None) == (score is None):
        raise InvalidInput('Send {"correct": true|false} or {"score": 0..1}, exactly one.')
    if correct is not None:
        if not isinstance(correct, bool):
            raise InvalidInput(f"correct must be true or false, got {correct!r}.")
        return correct, None
    value = finite_number("score", score, maximum=1.0)
    return value >= 0.5, float(value)


class CallFeedback(Aggregate):
    """The outcome of one gateway call, told later by the caller: one event, so it counts once."""

    class Given(Aggregate.Created):
        call_id: str
        correct: bool
        score: float | None
        model: str
        version: int | None
        #: the A/B test and arm the call was a sample of (None: outside any test)
        test_id: str | None
        arm: str | None
        actor: str
        reason: str | None

    @staticmethod
    def create_id(call_id: str) -> UUID:
        return feedback_id(call_id)

    @classmethod
    def give(cls, call: dict[str, Any], correct: bool, score: float | None, *, actor: str,
             reason: str | None) -> CallFeedback:  # fmt: skip
        return cls._create(cls.Given, call_id=call["id"], correct=correct, score=score, model=call["model"],
                           version=call["version"], test_id=call["ab_test"], arm=call["arm"], actor=actor,
                           reason=reason)  # fmt: skip

    def __init__(self, call_id: str, correct: bool, score: float | None, model: str, version: int | None,
                 test_id: str | None, arm: str | None, actor: str, reason: str | None) -> None:  # fmt: skip
        self.correct = correct
