"""One reading of a given time for records, commands and queries: ISO 8601, UTC when no offset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from domain.errors import InvalidInput
from domain.values import given_time, record_time, stored_time, utc_time

NOW = datetime(2026, 11, 26, 14, 2, tzinfo=UTC)


def test_a_record_without_a_time_is_stamped_now_and_stored_as_utc_text_with_microseconds():
    assert record_time(None, NOW) == "2026-11-26T14:02:00.000000+00:00"
    assert record_time("2026-11-26T15:02:00+01:00", NOW) == "2026-11-26T14:02:00.000000+00:00"
    assert record_time("2026-11-26T14:02:00", NOW) == "2026-11-26T14:02:00.000000+00:00"  # no offset: UTC


def test_a_bad_record_time_names_its_field_and_shows_the_format():
    with pytest.raises(ValueError, match=r"^at 'yesterday' is not an ISO 8601 time, e.g. 2026-11-26T14:02:00Z$"):
        utc_time("yesterday", NOW)
    with pytest.raises(ValueError, match="^at must be an ISO 8601 time, got 1764165720$"):
        utc_time(1764165720, NOW)


def test_a_command_or_query_time_is_invalid_input_named_after_its_option():
    assert given_time("--as-of", "2026-11-26T14:02:00Z") == NOW
    with pytest.raises(InvalidInput, match=r"^--since 'last tuesday' is not an ISO 8601 time, e\.g\. .*Z\.$"):
        given_time("--since", "last tuesday")
    with pytest.raises(InvalidInput, match="^since '0001-01-01 00:00:00\\+01:00' is out of range"):
        given_time("since", datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))).isoformat(sep=" "))


def test_a_query_time_compares_with_stored_times_as_the_same_text():
    assert stored_time("since", None) is None
    assert stored_time("since", datetime(2026, 11, 26, 15, 2, tzinfo=timezone(timedelta(hours=1)))) == record_time(NOW)
    assert stored_time("until", datetime(2026, 11, 26, 14, 2)) == "2026-11-26T14:02:00.000000+00:00"
    with pytest.raises(InvalidInput, match="^as_of '0001-01-01T00:00:00\\+01:00' is out of range: use a time"):
        stored_time("as_of", datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))))
