"""The prices the catalog ships with (USD, Standard tier), recorded as events by `ft-cli db init`.

Figures as listed in ft-lifecycle issue 3 for OpenAI's fine-tuning and base-model
prices; this machine has no internet, so they were transcribed, not re-read.
Override or extend them with `ft-cli prices set` / `POST /v1/prices`: a newer
effective date wins, and older records keep the cost they were given.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

SOURCE = "https://openai.com/api/pricing/ (Standard tier; transcribed from ft-lifecycle issue 3)"
READ_ON = "2026-11-26"
EFFECTIVE_FROM = datetime(2024, 1, 1, tzinfo=UTC)

# Fine-tuning (per 1M tokens): model, its fine-tunes' name pattern, its base family,
# training / fine-tuned input / cached input / output.
_FINE_TUNING = [
    ("gpt-4.1-2025-04-14", "ft:gpt-4.1-2025-04-14:*", "gpt-4.1", "25.00", "3.00", "0.75", "12.00"),
    ("gpt-4.1-mini-2025-04-14", "ft:gpt-4.1-mini-2025-04-14:*", "gpt-4.1-mini", "5.00", "0.80", "0.20", "3.20"),
    ("gpt-4.1-nano-2025-04-14", "ft:gpt-4.1-nano-2025-04-14:*", "gpt-4.1-nano", "1.50", "0.20", "0.05", "0.80"),
    ("gpt-4o-2024-08-06", "ft:gpt-4o-2024-08-06:*", "gpt-4o", "25.00", "3.75", "1.875", "15.00"),
    ("gpt-4o-mini-2024-07-18", "ft:gpt-4o-mini-2024-07-18:*", "gpt-4o-mini", "3.00", "0.30", "0.15", "1.20"),
    ("gpt-3.5-turbo", "ft:gpt-3.5-turbo*", "gpt-3.5-turbo", "8.00", "3.00", None, "6.00"),
]
# Dated snapshots whose fine-tunes the family's `ft:` pattern above already prices: training price and
# base price only. Source: OpenAI's pricing page, fine-tuning table (gpt-3.5-turbo-0125: $8.00 training,
# $0.50 input, $1.50 output per 1M tokens); transcribed, not re-read (no internet here).
_SNAPSHOTS = [("gpt-3.5-turbo-0125", "8.00", "0.50", "1.50")]
#: The base models OpenAI's fine-tuning API accepts (its documented list of fine-tunable snapshots);
#: an undated name is refused there ("gpt-4o-mini" must be "gpt-4o-mini-2024-07-18").
FINE_TUNABLE_SNAPSHOTS = (
    *(model for model, *_ in _FINE_TUNING if model != "gpt-3.5-turbo"),
    "gpt-3.5-turbo-0125", "gpt-3.5-turbo-1106", "gpt-3.5-turbo-0613", "o4-mini-2025-04-16",
)  # fmt: skip
# Base models' inference (per 1M tokens): input / output.
_BASE = [
    ("gpt-4.1", "2.00", "8.00"),
    ("gpt-4.1-mini", "0.40", "1.60"),
    ("gpt-4.1-nano", "0.10", "0.40"),
    ("gpt-4o", "2.50", "10.00"),
    ("gpt-4o-mini", "0.15", "0.60"),
    ("gpt-3.5-turbo", "0.50", "1.50"),
]


def shipped_prices() -> list[dict[str, Any]]:
    """Keyword arguments for `Price.validate`, one entry per pattern."""
    common = {"effective_from": EFFECTIVE_FROM, "source": SOURCE, "read_on": READ_ON}
    base = {name: (inp, out) for name, inp, out in _BASE}
    entries: list[dict[str, Any]] = []
    for model, fine_tuned, family, training, ft_in, ft_cached, ft_out in _FINE_TUNING:
        # the dated snapshot is trained at its training price and served at its family's price
        entry = {"pattern": model, "training_per_1m": training, "input_per_1m": base[family][0],
                 "output_per_1m": base[family][1]}  # fmt: skip
        entries.append(common | entry)
        fine_tuned_rates = {"input_per_1m": ft_in, "cached_input_per_1m": ft_cached, "output_per_1m": ft_out}
        entries.append(common | {"pattern": fine_tuned} | fine_tuned_rates)
    entries.append(common | {"pattern": "o4-mini-2025-04-16", "training_per_hour": "100"})
    entries.append(
        common | {"pattern": "ft:o4-mini-2025-04-16:*", "input_per_1m": "4.00", "cached_input_per_1m": "1.00",
                  "output_per_1m": "16.00"}
    )  # fmt: skip
    for model, training, inp, out in _SNAPSHOTS:
        entries.append(common | {"pattern": model, "training_per_1m": training, "input_per_1m": inp,
                                 "output_per_1m": out})  # fmt: skip
    for name, inp, out in _BASE:
        if name != "gpt-3.5-turbo":  # already priced above, with its training price
            entries.append(common | {"pattern": name, "input_per_1m": inp, "output_per_1m": out})
    return entries
