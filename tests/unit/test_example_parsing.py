"""Collected examples and A/B samples as the domain reads them: what is kept, what is refused and why."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from domain.ab_testing import TestConfig as ABTestConfig
from domain.ab_testing import parse_sample
from domain.batches import parse_batch
from domain.examples import parse_example

NOW = datetime(2026, 11, 26, 14, 2, tzinfo=UTC)
PAIR = {"example_id": "e1", "prompt": "How do I reset my password?", "response": "Open Settings, then Security."}


def test_a_prompt_response_pair_is_stored_with_defaults_and_the_time_it_arrived():
    assert parse_example(PAIR, NOW) == PAIR | {
        "system": None, "messages": None, "domain": None, "task_type": None, "rating": None, "source": "import",
        "model": None, "at": "2026-11-26T14:02:00.000000+00:00", "tags": [],
    }  # fmt: skip


def test_a_chat_example_keeps_only_role_content_and_name_of_each_message():
    chat = {"example_id": "c1", "messages": [{"role": "user", "content": "Hi\tthere\n", "extra": 1},
                                             {"role": "assistant", "content": "Hello!", "name": "bot"}]}  # fmt: skip
    parsed = parse_example(chat, NOW)
    assert parsed["messages"] == [{"role": "user", "content": "Hi\tthere\n"},
                                  {"role": "assistant", "content": "Hello!", "name": "bot"}]  # fmt: skip
    assert parsed["prompt"] is None and parsed["response"] is None


def test_names_are_checked_but_kept_as_given():
    parsed = parse_example(PAIR | {"example_id": " e1 ", "domain": "billing ", "at": "2026-11-26T15:02:00+01:00"}, NOW)
    assert (parsed["example_id"], parsed["domain"]) == (" e1 ", "billing ")
    assert parsed["at"] == "2026-11-26T14:02:00.000000+00:00"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"response": None}, "response is required (a non-empty text)"),
        ({"prompt": "   "}, "prompt is required (a non-empty text)"),
        ({"messages": []}, "messages must be a non-empty list of {role, content} objects (OpenAI chat format)"),
        ({"messages": [{"role": "robot", "content": "beep"}]}, "messages[0] has unknown role 'robot': use one of "
                                                               "system, user, assistant, tool, developer"),
        ({"source": "scraped"},
         "source must be one of distillation, task_history, feedback, import, gateway, got 'scraped'"),
        ({"rating": 6}, "rating must be a whole number from 1 to 5, got 6"),
        ({"rating": 4.5}, "rating must be a whole number from 1 to 5, got 4.5"),
        ({"tags": ["a"] * 21}, "tags must be a list of at most 20 texts"),
        ({"domain": "bil\nling"}, "domain contains the control character U+000A at position 3"),
        ({"prompt": "a\x00b"}, "prompt contains the control character U+0000 at position 1"),
        ({"colour": "red"}, "unknown field(s) colour"),
        ({"at": "last week"}, "at 'last week' is not an ISO 8601 time, e.g. 2026-11-26T14:02:00Z"),
    ],
)  # fmt: skip
def test_an_example_that_breaks_a_rule_is_refused_with_the_reason(change, reason):
    with pytest.raises(ValueError) as refused:
        parse_example({k: v for k, v in (PAIR | change).items() if v is not None}, NOW)
    assert str(refused.value).startswith(reason)


def test_a_batch_of_examples_lists_every_bad_one_and_each_repeat():
    raw = [PAIR, PAIR | {"rating": 0}, "text", PAIR | {"prompt": "again?"}]
    parsed, errors = parse_batch(raw, lambda e: parse_example(e, NOW), "example_id", what="example")
    assert [i for i, _ in parsed] == [0]
    assert [(e.index, e.id, e.message) for e in errors] == [
        (1, "e1", "rating must be a whole number from 1 to 5, got 0"),
        (2, None, "an example must be a JSON object, got str"),
        (3, "e1", "example_id 'e1' appears twice in the batch (also at 0)"),
    ]


# ------------------------------------------------------------------ samples

CONFIG = ABTestConfig.validate(test_id="t", model_a="base", model_b="ft", match_mode="substring")


def test_a_sample_names_its_arm_by_model_and_is_scored_by_the_tests_match_mode():
    sample = parse_sample({"sample_id": "s1", "model": "ft", "prediction": "Paris", "reference": "It is Paris.",
                           "latency_ms": 120, "cost": "0.002"}, CONFIG, NOW)  # fmt: skip
    assert sample == {"sample_id": "s1", "arm": "b", "correct": True, "latency_ms": 120.0, "cost": "0.002",
                      "at": "2026-11-26T14:02:00.000000+00:00", "prediction": "Paris",
                      "reference": "It is Paris."}  # fmt: skip


@pytest.mark.parametrize(
    ("sample", "reason"),
    [
        ({"arm": "c", "correct": True}, "arm must be 'a' or 'b' (or give the arm's model), got 'c'"),
        ({"model": "gpt-5", "correct": True}, "model 'gpt-5' is not in this test (arms: 'base', 'ft')"),
        ({"arm": "a", "model": "ft", "correct": True}, "model 'ft' is not arm a's model ('base')"),
        ({"arm": "a", "prediction": "Paris"}, "give correct, or a prediction and a reference to compare"),
        ({"arm": "a", "correct": "yes"}, "correct must be true or false, got 'yes'"),
    ],
)
def test_a_sample_that_cannot_be_counted_is_refused_with_the_reason(sample, reason):
    with pytest.raises(ValueError, match="^" + re.escape(reason)):
        parse_sample({"sample_id": "s1"} | sample, CONFIG, NOW)
