"""Dataset builds as pure rules: the filters a build takes, which examples pass, duplicates, the split."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from domain.datasets import (
    BuildSpec,
    build_dataset,
    check_example,
    default_epochs,
    export_bytes,
    in_train,
    token_limit,
)
from domain.errors import InvalidInput
from domain.pricing import Price
from projections.examples import ExampleFilter

PROMPT = "How do I reset my password?"  # 27 characters: over the 10 a prompt needs
RESPONSE = "Open Settings, then Security, then Reset password."


def words(messages):
    """A stand-in tokenizer: one token per word."""
    return sum(len(m["content"].split()) for m in messages)


def example(example_id, prompt=PROMPT, response=RESPONSE, **fields):
    return {"example_id": example_id, "prompt": prompt, "response": response, "system": None, "messages": None,
            "domain": "support", "task_type": "qa", "rating": 5, "source": "import", "model": None,
            "at": "2026-11-01T00:00:00.000000+00:00", "tags": []} | fields  # fmt: skip


def distinct(n, **fields):
    return [example(f"e{i:03d}", prompt=f"{PROMPT} (case {i})", **fields) for i in range(n)]


# ------------------------------------------------------------------ filters


def test_a_build_keeps_only_examples_rated_4_or_more_unless_told_otherwise():
    assert BuildSpec.validate().min_rating == 4
    assert BuildSpec.validate(min_rating=None).min_rating == 4  # an absent filter is the default, not "any"
    assert BuildSpec.validate(min_rating=2).min_rating == 2


def test_the_filters_of_a_build_select_its_examples_in_sql():
    spec = BuildSpec.validate(domain="support", since="2026-11-01T00:00:00.000000+00:00")
    where, params = ExampleFilter(**spec.filters).where()
    assert where == "WHERE rating >= ? AND domain = ? AND at >= ?"
    assert params == [4, "support", "2026-11-01T00:00:00.000000+00:00"]


def test_no_filter_selects_every_example():
    assert ExampleFilter().where() == ("", [])


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"min_rating": 6}, "min_rating must be a whole number from 1 to 5, got 6."),
        ({"min_rating": True}, "min_rating must be a whole number from 1 to 5, got True."),
        ({"train_ratio": 1.0}, "train_ratio must be between 0 and 1 (0.8 keeps 80% for training), got 1.0."),
        ({"dataset_id": "../etc"}, "Invalid dataset id '../etc'"),
        ({"colour": "blue"}, "Unknown build settings: colour."),
        ({"domain": "sup\x00port"}, "domain contains the control character U+0000"),
    ],
)
def test_a_build_setting_out_of_its_rule_is_refused_with_the_rule(settings, message):
    with pytest.raises(InvalidInput) as refused:
        BuildSpec.validate(**settings)
    assert refused.value.detail.startswith(message)


# --------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"prompt": "  short  "}, "prompt shorter than 10 characters"),
        ({"response": "Too short."}, "response shorter than 20 characters"),
        ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "  "}]},
         "message 1 (assistant) is empty"),
        ({"messages": [{"role": "user", "content": "hi"}, {"role": "robot", "content": "beep"}]},
         "message 1 has unknown role 'robot'"),
        ({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]},
         "no assistant message to learn from"),
    ],
)  # fmt: skip
def test_an_example_a_model_cannot_learn_from_is_rejected_with_the_reason(fields, reason):
    assert check_example(example("e1", **fields), words, None) == (reason, 0)


def test_an_example_over_the_target_models_token_limit_is_rejected_and_its_tokens_counted():
    assert check_example(example("e1"), words, 10) == ("13 tokens, over the 10-token limit of an example", 13)
    assert check_example(example("e1"), words, 13) == (None, 13)


def test_the_token_limit_follows_the_base_model_of_a_fine_tuned_name():
    assert token_limit("gpt-4o-mini-2024-07-18") == 65_536
    assert token_limit("ft:gpt-3.5-turbo-0125:acme::abc") == 16_385
    assert token_limit("llama3.2:1b") is None


def test_default_epochs_follow_openais_rule_from_the_training_set_size():
    assert default_epochs(10) == 10  # 3 epochs of 10 would train on 30 examples: raised toward 100
    assert default_epochs(1_000) == 3
    assert default_epochs(20_000) == 1  # 3 epochs would pass 25,000 examples


# ------------------------------------------------------------------- dedupe


def test_a_duplicate_is_the_same_prompt_and_response_after_case_and_spacing_and_the_first_is_kept():
    copy = example("e2", prompt="how do I   RESET my password?", response=RESPONSE.upper())
    build = build_dataset(BuildSpec.validate(train_ratio=0.5), [example("e1"), copy, *distinct(3)], words)
    assert build.rejected == [{"example_id": "e2", "reason": "duplicate of e1 (same normalised prompt and response)"}]
    assert sorted(build.train_ids + build.test_ids) == ["e000", "e001", "e002", "e1"]


def test_a_build_where_nothing_passes_is_refused_naming_the_reasons():
    with pytest.raises(InvalidInput, match=r"No example of the 1 matching the filters passed validation: e1: prompt"):
        build_dataset(BuildSpec.validate(), [example("e1", prompt="hi")], words)


# -------------------------------------------------------------------- split


def test_the_split_is_a_deterministic_coin_per_example_id_and_seed():
    assert in_train("e001", 42, 0.8) == in_train("e001", 42, 0.8)
    share = sum(in_train(f"e{i}", 42, 0.8) for i in range(10_000)) / 10_000
    assert 0.78 < share < 0.82
    assert [in_train(f"e{i}", 42, 0.8) for i in range(50)] != [in_train(f"e{i}", 7, 0.8) for i in range(50)]


def test_the_same_examples_and_settings_build_the_same_dataset_to_the_byte():
    examples = distinct(40)
    first = build_dataset(BuildSpec.validate(seed=7), examples, words)
    again = build_dataset(BuildSpec.validate(seed=7), list(examples), words)
    assert (first.train_ids, first.test_ids, first.content_hash) == (again.train_ids, again.test_ids,
                                                                     again.content_hash)  # fmt: skip
    assert first.dataset_id == "ds-" + first.content_hash[:12]
    assert len(first.train_ids) + len(first.test_ids) == 40
    assert set(first.train_ids) == {e["example_id"] for e in examples if in_train(e["example_id"], 7, 0.8)}
    other_seed = build_dataset(BuildSpec.validate(seed=8), examples, words)
    assert other_seed.content_hash != first.content_hash


def test_a_small_or_lopsided_build_warns_and_prices_its_training_from_the_catalog():
    price = Price.validate(pattern="gpt-4o-mini-2024-07-18", effective_from=datetime(2026, 1, 1, tzinfo=UTC),
                           training_per_1m="3")  # fmt: skip
    build = build_dataset(BuildSpec.validate(train_ratio=0.5), distinct(12), words, [price])
    assert len(build.train_ids) == 3  # the seed-42 coin sends 3 of these 12 ids to train
    assert build.stats["warnings"] == [
        "3 training examples: OpenAI rejects files with fewer than 10",
        "domain 'support' makes up 100% of the examples",
    ]
    # 3 examples of 15 tokens, for 25 epochs (3 x 3 is under OpenAI's 100-example target), at $3 per 1M
    assert build.stats["train_tokens"] == 45 and build.stats["default_epochs"] == 25
    assert Decimal(build.stats["estimated_training_cost"]["gpt-4o-mini-2024-07-18"]) == Decimal("0.003375")


def test_an_export_writes_the_same_examples_in_each_format():
    one = [example("e1", system="Be brief.")]
    assert export_bytes(one, "openai") == (
        b'{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"How do I reset my '
        b'password?"},{"role":"assistant","content":"Open Settings, then Security, then Reset password."}]}\n'
    )
    assert b'"instruction": "How do I reset my password?"' in export_bytes(one, "alpaca")
    with pytest.raises(InvalidInput, match="Unknown format 'csv'"):
        export_bytes(one, "csv")
