"""Inference record validation: the fast path and the explaining path agree."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.inference import InferenceRecord

NOW = datetime(2026, 11, 26, tzinfo=UTC)
BASE = {"id": "r1", "model": "gpt-4o-mini", "input_tokens": 10, "output_tokens": 5}


@pytest.mark.parametrize(
    "record",
    [
        BASE,
        BASE | {"cached_input_tokens": 10, "latency_ms": 12.5, "is_fine_tuned": True, "at": "2026-11-20T10:00:00Z"},
        BASE | {"cost": "0.01", "tags": ["a"], "ab_test": "t1", "latency_ms": 3},
        BASE | {"id": " padded ", "at": "2026-11-20T11:00:00+01:00"},
    ],
)
def test_valid_records_parse_to_the_same_values_on_both_paths(record: dict) -> None:
    fast = InferenceRecord.parse(record, NOW)
    explained = InferenceRecord._parse_explaining(record, NOW)
    assert fast == explained
    assert fast.at.utcoffset().total_seconds() == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"input_tokens": -1}, "input_tokens must be 0 or more"),
        ({"input_tokens": 1.5}, "input_tokens must be a whole number"),
        ({"input_tokens": True}, "input_tokens must be a whole number"),
        ({"cached_input_tokens": 11}, "cannot exceed input_tokens"),
        ({"latency_ms": float("inf")}, "latency_ms must be a number"),
        ({"latency_ms": -2}, "latency_ms must be 0 or more"),
        ({"model": ""}, "model is required"),
        ({"cost": "-1"}, "cost must be 0 or more"),
        ({"is_fine_tuned": "yes"}, "is_fine_tuned must be true or false"),
        ({"colour": "red"}, "unknown field"),
        ({"at": "yesterday"}, "is not an ISO 8601 time"),
    ],
)
def test_an_invalid_record_is_explained(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        InferenceRecord.parse(BASE | change, NOW)
