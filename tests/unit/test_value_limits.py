"""The bounded value helpers of domain/values.py: every limit a client meets, with its message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from domain.errors import InvalidInput
from domain.values import (
    MAX_AMOUNT,
    MAX_COUNT,
    MAX_NAME,
    MAX_PLACES,
    MAX_TOKENS,
    as_value_error,
    aware_time,
    decimal_value,
    finite_number,
    free_text,
    name_text,
    optional_name,
    path_id,
    utc_time,
    whole_number,
)

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def test_sums_of_the_largest_tokens_over_billions_of_records_fit_in_63_bits() -> None:
    assert MAX_TOKENS * 9_000_000_000 < 2**63


@pytest.mark.parametrize("value", [0, 1, MAX_COUNT])
def test_a_whole_number_inside_the_range_is_kept(value: int) -> None:
    assert whole_number("dataset_size", value) == value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (-1, "dataset_size must be 0 or more, got -1"),
        (MAX_COUNT + 1, "dataset_size must be at most 1,000,000,000, got 1000000001"),
        (2**62, "dataset_size must be at most 1,000,000,000"),
        pytest.param(10**100_000, "a number of about 2^332193", id="10**100000"),
        (1e21, "dataset_size must be a whole number, got 1e+21"),
        (True, "dataset_size must be a whole number, got True"),
        ("5", "dataset_size must be a whole number, got '5'"),
    ],
)
def test_a_whole_number_outside_the_range_is_refused_with_the_range(value: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message.replace("+", r"\+").replace("^", r"\^")):
        whole_number("dataset_size", value)


def test_a_finite_number_is_kept_as_a_float() -> None:
    assert finite_number("latency_ms", 12, maximum=1e9) == 12.0
    assert finite_number("accuracy", 1, maximum=1.0) == 1.0


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (float("nan"), "latency_ms must be a number, got nan"),
        (float("inf"), "latency_ms must be a number, got inf"),
        (-0.5, "latency_ms must be 0 or more"),
        (1e9 + 1, "latency_ms must be at most"),
        pytest.param(10**400, "latency_ms must be at most", id="10**400"),
        (False, "latency_ms must be a number"),
    ],
)
def test_a_float_that_is_not_finite_or_out_of_range_is_refused(value: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        finite_number("latency_ms", value, maximum=1e9)


@pytest.mark.parametrize("value", [float("nan"), -0.01, 1.01])
def test_a_share_outside_0_and_1_is_refused_as_such(value: float) -> None:
    with pytest.raises(InvalidInput, match="accuracy must be between 0 and 1"):
        finite_number("accuracy", value, maximum=1.0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0.1", Decimal("0.1")), (0.1, Decimal("0.1")), (3, Decimal(3)), ("1e12", Decimal("1e12")),
     ("0." + "0" * 17 + "1", Decimal("1e-18")), (Decimal("2.50"), Decimal("2.50"))],
)  # fmt: skip
def test_a_decimal_inside_its_bounds_is_kept_exactly(value: object, expected: Decimal) -> None:
    assert decimal_value("cost", value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1e999999", "cost must be at most 1,000,000,000,000, got 1E\\+999999"),
        (str(MAX_AMOUNT + 1), "cost must be at most 1,000,000,000,000"),
        ("1e-19", f"cost takes at most {MAX_PLACES} decimal places, got 1E-19"),
        ("NaN", "cost must be a finite number"),
        ("Infinity", "cost must be a finite number"),
        ("-1", "cost must be 0 or more"),
        ("1" * 101, "a text of 101 characters"),
        ("lots", "cost must be a number, got 'lots'"),
        ([1], "cost must be a number"),
    ],
)
def test_a_decimal_past_its_bounds_is_refused_before_any_arithmetic(value: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        decimal_value("cost", value)


def test_a_usd_amount_says_so_in_its_message() -> None:
    with pytest.raises(InvalidInput, match=r"gpu_hour must be a finite amount of 0 or more \(USD\)"):
        decimal_value("gpu_hour", "-2", usd=True)


def test_a_name_is_trimmed_and_must_not_be_blank() -> None:
    assert name_text("model", "  gpt-4o  ") == "gpt-4o"
    with pytest.raises(InvalidInput, match="model is required"):
        name_text("model", "   ")
    assert optional_name("source", "  ") is None


@pytest.mark.parametrize("bad", ["\x00", "\t", "\n", "\r", "\x1b", "\x7f", "\x85", "\ud800"])
def test_a_name_with_any_control_character_is_refused_with_where_it_is(bad: str) -> None:
    with pytest.raises(InvalidInput, match=f"model contains the control character U\\+{ord(bad):04X} at position 2"):
        name_text("model", f"ab{bad}cd")


def test_a_name_longer_than_its_limit_is_refused() -> None:
    name_text("model", "x" * MAX_NAME)
    with pytest.raises(InvalidInput, match="model is too long \\(257 characters, at most 256\\)"):
        name_text("model", "x" * (MAX_NAME + 1))


def test_free_text_keeps_tabs_and_line_breaks_but_refuses_nul_and_other_controls() -> None:
    assert free_text("prompt", " a\tb\r\nc ", max_length=100) == " a\tb\r\nc "
    for bad in ("\x00", "\x0b", "\x1f", "\x9f"):
        with pytest.raises(InvalidInput, match="other than tab, newline and carriage return"):
            free_text("prompt", f"a{bad}", max_length=100)
    with pytest.raises(InvalidInput, match="prompt is too long"):
        free_text("prompt", "x" * 101, max_length=100)


@pytest.mark.parametrize("good", ["a", "job-3f2a9c", "v1.2", "_x", "A" * 64])
def test_an_id_of_letters_digits_dots_and_dashes_names_a_folder(good: str) -> None:
    assert path_id("job id", good) == good


@pytest.mark.parametrize("bad", [".", "..", ".hidden", "", "a/b", "a b", "A" * 65, "x\x00", None])
def test_an_id_that_could_climb_or_hide_a_folder_is_refused_with_the_rule(bad: object) -> None:
    with pytest.raises(InvalidInput, match="not starting with a dot"):
        path_id("job id", bad)


def test_a_leading_dot_is_explained() -> None:
    with pytest.raises(InvalidInput, match="would name a hidden or parent folder"):
        path_id("job id", "..")


def test_a_check_turns_into_a_value_error_for_batch_parsers() -> None:
    with pytest.raises(ValueError, match="input_tokens must be at most 1,000,000,000, got 4611686018427387904$"):
        as_value_error(whole_number, "input_tokens", 2**62, maximum=MAX_TOKENS)


def test_record_times_are_utc_and_out_of_range_times_are_refused() -> None:
    assert utc_time("2026-12-01T01:00:00+01:00", NOW) == NOW
    assert utc_time(None, NOW) == NOW
    with pytest.raises(ValueError, match="out of range"):
        utc_time("0001-01-01T00:00:00+01:00", NOW)
    with pytest.raises(ValueError, match="not an ISO 8601 time"):
        utc_time("yesterday", NOW)
    with pytest.raises(InvalidInput, match="effective_from .* is out of range"):
        aware_time("effective_from", datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))))
    with pytest.raises(InvalidInput, match="with its offset"):
        aware_time("at", datetime(2026, 1, 1))
