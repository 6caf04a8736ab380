"""Fine-tuning jobs in the domain: file checks, cost estimates and idempotent syncing, with no store."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from domain.errors import InvalidInput, RuleViolation
from domain.job_specs import CostEstimate, Hyperparameters, JobSpec, ProviderJob, TrainingSource
from domain.jobs import FineTuningJob
from domain.pricing import Price
from domain.training_files import check_training_file, estimate_cost


def words(messages: list[dict[str, str]]) -> int:
    """A stand-in token counter: one token per word."""
    return sum(len(m["content"].split()) for m in messages)


def line(user: str = "What is the refund window?", answer: str = "Thirty days from delivery, no questions asked.") \
        -> str:  # fmt: skip
    return json.dumps({"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]})


def check(text: str, **kw):  # noqa: ANN003, ANN201
    return check_training_file(text.encode(), base_model="gpt-4o-mini-2024-07-18", method=kw.get("method",
                               "supervised"), count=words)  # fmt: skip


def test_a_valid_file_is_counted_example_by_example() -> None:
    result = check("\n".join(line() for _ in range(12)) + "\n\n")
    assert (result.examples, result.tokens, result.problems) == (12, 12 * 12, [])


def test_every_problem_is_named_by_its_line() -> None:
    text = "\n".join([line()] * 10 + ["{oops", '["a list"]', '{"prompt": "old format"}',
                                      json.dumps({"messages": [{"role": "user", "content": "only a question"}]}),
                                      json.dumps({"messages": [{"role": "robot", "content": "x"}]})])  # fmt: skip
    assert check(text).problems == [
        "line 11 is not valid JSON (Expecting property name enclosed in double quotes, column 2)",
        "line 12 is not a JSON object",
        "line 13 has no `messages` list (chat format: system, user, assistant)",
        "line 14: no assistant message to learn from",
        "line 15: message 0 has unknown role 'robot'",
    ]


def test_fewer_than_ten_examples_is_a_problem_and_so_is_text_that_is_not_utf8() -> None:
    assert check("\n".join([line()] * 9)).problems == ["it has 9 example(s); OpenAI needs at least 10"]
    assert check_training_file(b"\xff\xfe", base_model="gpt-4o", method="supervised", count=words).problems == [
        "the file is not UTF-8 text (byte 0)"
    ]


def test_a_dpo_file_needs_preferred_and_non_preferred_outputs() -> None:
    good = json.dumps({"input": {"messages": [{"role": "user", "content": "Hi there"}]},
                       "preferred_output": [{"role": "assistant", "content": "Hello, how can I help?"}],
                       "non_preferred_output": [{"role": "assistant", "content": "What?"}]})  # fmt: skip
    bad = json.dumps({"input": {"messages": [{"role": "user", "content": "Hi"}]}, "preferred_output": []})
    result = check("\n".join([good] * 10 + [bad]), method="dpo")
    assert result.examples == 10
    assert result.problems == ["line 11: a DPO example needs preferred_output (a list of assistant messages)"]


def test_the_estimate_is_tokens_times_epochs_times_the_training_price() -> None:
    price = Price.validate(pattern="gpt-4o-mini-2024-07-18", effective_from=datetime(2024, 1, 1, tzinfo=UTC),
                           training_per_1m="3.00")  # fmt: skip
    assert estimate_cost(100_000, 500, 2, price).total == Decimal("0.6")
    default = estimate_cost(100_000, 20, None, price)  # OpenAI's rule: 100 examples' worth, so 5 epochs
    assert (default.epochs, default.epochs_source, default.total) == (5, "default rule", Decimal("1.5"))
    hourly = Price.validate(pattern="o4-mini", effective_from=datetime(2024, 1, 1, tzinfo=UTC), training_per_hour=100)
    assert estimate_cost(1000, 100, None, hourly).total is None and "per training hour" in (
        estimate_cost(1000, 100, None, hourly).note or "")
    assert estimate_cost(1000, 100, None, None).total is None


def test_hyperparameters_are_validated_with_their_ranges() -> None:
    assert Hyperparameters.validate(method="supervised", n_epochs="auto").n_epochs is None
    with pytest.raises(InvalidInput, match="n_epochs must be a whole number from 1 to 50"):
        Hyperparameters.validate(method="supervised", n_epochs=51)
    with pytest.raises(InvalidInput, match="learning_rate_multiplier must be more than 0"):
        Hyperparameters.validate(method="supervised", learning_rate_multiplier=0)
    with pytest.raises(InvalidInput, match="Unknown hyperparameters: epochs"):
        Hyperparameters.validate(method="supervised", epochs=3)


def submitted_job() -> FineTuningJob:
    spec = JobSpec.validate(base_model="gpt-4o-mini-2024-07-18", training=TrainingSource("file", path="/t.jsonl"),
                            suffix="bot")  # fmt: skip
    job = FineTuningJob.create(spec, CostEstimate(10, 3, "given", None, None, None), actor="alice", reason=None)
    job.record_submission("ftjob-1", "validating_files", actor="alice")
    job.collect_events()
    return job


def reading(status: str, *events: str, **fields) -> ProviderJob:  # noqa: ANN003
    return ProviderJob("ftjob-1", status, new_events=[{"id": e, "type": "message", "message": e} for e in events],
                       **fields)  # fmt: skip


def test_a_reading_with_nothing_new_records_nothing() -> None:
    job = submitted_job()
    assert job.sync(reading("running", "e1", "e2"), actor="poller") is True
    assert [type(e).__name__ for e in job.collect_events()] == ["StatusChanged"]
    assert job.sync(reading("running", "e1", "e2"), actor="poller") is False
    assert job.sync(reading("running", "e1", "e2", "e3"), actor="poller") is True
    assert [type(e).__name__ for e in job.collect_events()] == ["Progressed"]


def test_a_finished_job_stays_finished_whatever_a_later_reading_says() -> None:
    job = submitted_job()
    job.sync(reading("succeeded", fine_tuned_model="ft:x", trained_tokens=30), actor="poller")
    assert [type(e).__name__ for e in job.collect_events()] == ["StatusChanged", "Succeeded"]
    assert job.sync(reading("failed", error={"code": "x", "message": "late"}), actor="poller") is False
    assert (job.status, job.fine_tuned_model, job.trained_tokens) == ("succeeded", "ft:x", 30)
    with pytest.raises(RuleViolation, match="already succeeded"):
        job.cancel_unsubmitted(actor="alice", reason=None)


def test_a_reading_of_another_provider_job_is_refused() -> None:
    with pytest.raises(RuleViolation, match="is not the job submitted"):
        submitted_job().sync(ProviderJob("ftjob-2", "running"), actor="poller")


def test_an_older_reading_does_not_move_a_job_backwards() -> None:
    job = submitted_job()
    job.sync(reading("running", "e1"), actor="poller-b")
    job.collect_events()
    assert job.sync(reading("queued", "e0"), actor="poller-a") is True  # its new event is kept
    assert [type(e).__name__ for e in job.collect_events()] == ["Progressed"] and job.status == "running"
    job.sync(reading("paused"), actor="poller")
    assert job.status == "paused"
    job.sync(reading("running"), actor="poller")
    assert job.status == "running"
