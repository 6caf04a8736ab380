"""The price catalog alone: patterns, effective dates, overrides and validation."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from domain.errors import InvalidInput
from domain.pricing import Price, PriceCatalog
from domain.shipped_prices import shipped_prices

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 6, 1, tzinfo=UTC)


def catalog_with(*entries: dict) -> PriceCatalog:
    catalog = PriceCatalog.open(actor="t")
    for e in entries:
        catalog.set_price(Price.validate(**e), actor="t")
    return catalog


def test_an_exact_name_wins_over_a_prefix_and_a_longer_prefix_over_a_shorter() -> None:
    catalog = catalog_with(
        {"pattern": "ft:gpt*", "effective_from": T0, "input_per_1m": "9"},
        {"pattern": "ft:gpt-4o-mini-2024-07-18:*", "effective_from": T0, "input_per_1m": "0.30"},
        {"pattern": "ft:gpt-4o-mini-2024-07-18:acme::abc", "effective_from": T0, "input_per_1m": "0.25"},
    )
    assert catalog.price_at("ft:gpt-4o-mini-2024-07-18:acme::abc", T1).input_per_1m == Decimal("0.25")
    assert catalog.price_at("ft:gpt-4o-mini-2024-07-18:acme::xyz", T1).input_per_1m == Decimal("0.30")
    assert catalog.price_at("ft:gpt-4.1-2025-04-14:acme::q", T1).input_per_1m == Decimal("9")
    assert catalog.price_at("llama3", T1) is None


def test_a_price_applies_from_its_effective_date_and_older_times_keep_the_older_price() -> None:
    catalog = catalog_with(
        {"pattern": "m", "effective_from": T0, "input_per_1m": "1.00"},
        {"pattern": "m", "effective_from": T1, "input_per_1m": "2.00"},
    )
    assert catalog.price_at("m", datetime(2025, 12, 31, tzinfo=UTC)) is None
    assert catalog.price_at("m", T0).input_per_1m == Decimal("1.00")
    assert catalog.price_at("m", datetime(2026, 5, 31, 23, 59, tzinfo=UTC)).input_per_1m == Decimal("1.00")
    assert catalog.price_at("m", T1).input_per_1m == Decimal("2.00")


def test_setting_a_price_again_for_the_same_date_overrides_it() -> None:
    catalog = catalog_with(
        {"pattern": "m", "effective_from": T0, "input_per_1m": "1.00"},
        {"pattern": "m", "effective_from": T0, "input_per_1m": "1.50"},
    )
    assert catalog.price_at("m", T1).input_per_1m == Decimal("1.50")
    assert [p.input_per_1m for p in catalog.in_force(T1)] == [Decimal("1.50")]


def test_the_shipped_catalog_has_the_published_fine_tuning_and_base_prices() -> None:
    catalog = catalog_with(*shipped_prices())
    at = datetime(2026, 11, 26, tzinfo=UTC)
    mini = catalog.price_at("gpt-4o-mini-2024-07-18", at)
    assert (mini.training_per_1m, mini.input_per_1m, mini.output_per_1m) == (
        Decimal("3.00"),
        Decimal("0.15"),
        Decimal("0.60"),
    )
    ft = catalog.price_at("ft:gpt-4o-mini-2024-07-18:acme:support:abc123", at)
    assert (ft.input_per_1m, ft.cached_input_per_1m, ft.output_per_1m) == (
        Decimal("0.30"),
        Decimal("0.15"),
        Decimal("1.20"),
    )
    assert catalog.price_at("ft:gpt-4o-2024-08-06:acme::x", at).cached_input_per_1m == Decimal("1.875")
    assert catalog.price_at("ft:gpt-3.5-turbo-0125:acme::x", at).cached_input_per_1m is None
    assert catalog.price_at("o4-mini-2025-04-16", at).training_per_hour == Decimal("100")
    assert catalog.price_at("gpt-4.1-nano", at).output_per_1m == Decimal("0.40")
    assert all(p.source and p.read_on for p in catalog.in_force(at))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"input_per_1m": "-1"}, "input_per_1m must be a finite amount of 0 or more"),
        ({"input_per_1m": "cheap"}, "input_per_1m must be a decimal amount in USD"),
        ({}, "A price needs at least one rate"),
        ({"training_per_1m": "1", "training_per_hour": "2"}, "not both"),
        ({"pattern": "*", "input_per_1m": "1"}, "a lone '\\*' would price every model"),
        ({"pattern": "a*b", "input_per_1m": "1"}, "one '\\*' at the end"),
        (
            {"effective_from": datetime(2026, 1, 1), "input_per_1m": "1"},
            "effective_from must be a time with its offset",
        ),
    ],
)
def test_an_invalid_price_says_what_is_wrong(fields: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        Price.validate(**({"pattern": "m", "effective_from": T0} | fields))


def test_the_batch_lookup_agrees_with_price_at_for_every_model_and_time() -> None:
    catalog = catalog_with(
        *shipped_prices(),
        {
            "pattern": "ft:gpt-4o-mini-2024-07-18:acme:*",
            "effective_from": T1,
            "input_per_1m": "0.2",
            "output_per_1m": "1",
        },
        {"pattern": "gpt-4o-mini", "effective_from": T1, "input_per_1m": "0.1", "output_per_1m": "0.5"},
        {"pattern": "gpt-4o-mini", "effective_from": T1, "input_per_1m": "0.11", "output_per_1m": "0.5"},
    )
    lookup = catalog.lookup()
    models = ["gpt-4o-mini", "ft:gpt-4o-mini-2024-07-18:acme::x", "ft:gpt-4o-mini-2024-07-18:other::y", "llama3"]
    for model in models:
        for at in (datetime(2023, 1, 1, tzinfo=UTC), T0, T1, datetime(2027, 1, 1, tzinfo=UTC)):
            assert lookup(model, at) == catalog.price_at(model, at)
