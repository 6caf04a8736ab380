"""The one batch parser every high-volume path uses: every bad record listed, by its place."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.batches import MAX_BATCH, BatchRejected, RecordError, parse_batch
from domain.errors import InvalidInput
from domain.inference import InferenceRecord

NOW = datetime(2026, 11, 26, tzinfo=UTC)


def parse_rating(item):
    if not isinstance(item, dict) or not isinstance(item.get("rating"), int):
        raise ValueError("rating must be a whole number")
    return {"example_id": item["example_id"], "rating": item["rating"]}


def test_a_valid_batch_comes_back_whole_with_each_record_at_its_place():
    raw = [{"example_id": "e1", "rating": 5}, {"example_id": "e2", "rating": 3}]
    parsed, errors = parse_batch(raw, parse_rating, "example_id", what="example")
    assert parsed == [(0, raw[0]), (1, raw[1])]
    assert errors == []


def test_every_invalid_record_is_listed_with_its_index_and_id_and_the_rest_still_parse():
    raw = [{"example_id": "e1", "rating": "five"}, {"example_id": "e2", "rating": 4}, "not an object",
           {"example_id": 7, "rating": None}]  # fmt: skip
    parsed, errors = parse_batch(raw, parse_rating, "example_id", what="example")
    assert parsed == [(1, {"example_id": "e2", "rating": 4})]
    assert errors == [
        RecordError(0, "rating must be a whole number", "e1"),
        RecordError(2, "rating must be a whole number", None),
        RecordError(3, "rating must be a whole number", None),  # an id that is not a text is not quoted
    ]


def test_an_id_twice_in_a_batch_is_an_error_at_its_second_place_naming_the_first():
    raw = [{"example_id": "e1", "rating": 5}, {"example_id": "bad"}, {"example_id": "e1", "rating": 1}]
    parsed, errors = parse_batch(raw, parse_rating, "example_id", what="example")
    assert parsed == [(0, raw[0])]
    assert errors == [
        RecordError(1, "rating must be a whole number", "bad"),
        RecordError(2, "example_id 'e1' appears twice in the batch (also at 0)", "e1"),
    ]


def test_ids_are_compared_as_parsed_so_padding_does_not_hide_a_repeat():
    raw = [{"id": "r1", "model": "m", "input_tokens": 1, "output_tokens": 1},
           {"id": " r1 ", "model": "m", "input_tokens": 1, "output_tokens": 1}]  # fmt: skip
    parsed, errors = parse_batch(raw, lambda r: InferenceRecord.parse(r, NOW), "id")
    assert [(i, r.id) for i, r in parsed] == [(0, "r1")]
    assert errors == [RecordError(1, "id 'r1' appears twice in the batch (also at 0)", "r1")]


def test_a_batch_over_the_limit_or_empty_is_refused_naming_what_it_holds():
    with pytest.raises(InvalidInput, match="A batch holds at most 10,000 samples, got 10,001: split it."):
        parse_batch([{}] * (MAX_BATCH + 1), parse_rating, "sample_id", what="sample")
    with pytest.raises(InvalidInput, match="The batch is empty: send at least one sample."):
        parse_batch([], parse_rating, "sample_id", what="sample")


def test_without_a_limit_any_size_parses_and_an_empty_one_is_left_to_the_caller():
    raw = [{"example_id": f"e{i}", "rating": 1} for i in range(MAX_BATCH + 1)]
    parsed, errors = parse_batch(raw, parse_rating, "example_id", limit=None)
    assert len(parsed) == MAX_BATCH + 1 and errors == []
    assert parse_batch([], parse_rating, "example_id", limit=None) == ([], [])


def test_a_rejected_batch_says_how_many_records_are_bad_and_the_first_reason():
    error = BatchRejected([RecordError(3, "rating must be a whole number", "e4"), RecordError(9, "x")],
                          what="example", offset=1)  # fmt: skip
    assert error.detail == (
        "The batch was rejected, nothing was recorded: 2 invalid example(s); example 4: rating must be a "
        "whole number (and 1 more)."
    )
    assert isinstance(error, InvalidInput) and error.slug == "invalid-records"
