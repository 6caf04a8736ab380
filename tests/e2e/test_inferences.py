"""Inference records, the high-volume path, on both stores: exact sums, safe retries, clear refusals."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.cli.app import app
from api.runtime import Runtime
from tests.support.views import dump_views

MILLION = Decimal(1_000_000)
# The shipped catalog's rates, written out here so the expected sums do not come from the code under test.
RATES = {
    "gpt-4o-mini": (Decimal("0.15"), Decimal("0.15"), Decimal("0.60")),
    "ft:gpt-4o-mini-2024-07-18:acme::support": (Decimal("0.30"), Decimal("0.15"), Decimal("1.20")),
}
runner = CliRunner()


def random_records(n: int, seed: int = 3) -> list[dict]:
    rng = random.Random(seed)
    records = []
    for i in range(n):
        model = rng.choice([*RATES, "llama3.2:1b"])
        tokens_in = rng.randrange(4000)
        record = {
            "id": f"req-{seed}-{i}",
            "model": model,
            "at": f"2026-11-{rng.randrange(1, 29):02d}T{rng.randrange(24):02d}:00:00Z",
            "input_tokens": tokens_in,
            "cached_input_tokens": rng.randrange(tokens_in + 1) if rng.random() < 0.3 else 0,
            "output_tokens": rng.randrange(1500),
            "latency_ms": round(rng.uniform(50, 3000), 3),
            "is_fine_tuned": model.startswith("ft:"),
        }
        if model == "llama3.2:1b" or rng.random() < 0.2:  # the local model has no price: its cost is given
            record["cost"] = f"0.{rng.randrange(10**9):09d}"
        records.append(record)
    return records


def expected_cost(r: dict) -> Decimal:
    if "cost" in r:
        return Decimal(r["cost"])
    rate_in, rate_cached, rate_out = RATES[r["model"]]
    uncached = r["input_tokens"] - r["cached_input_tokens"]
    return (uncached * rate_in + r["cached_input_tokens"] * rate_cached + r["output_tokens"] * rate_out) / MILLION


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_100000_records_imported_in_batches_sum_exactly_once_and_rebuild_identically(
    runtime: Runtime, tmp_path: Path
) -> None:
    records = random_records(100_000)
    file = write_jsonl(tmp_path / "inferences.jsonl", records)
    args = ["import-inferences", str(file), "--batch-size", "7000", "--json", "--database-url", runtime.config.url]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.stderr
    assert json.loads(first.stdout)["accepted"] == 100_000
    again = runner.invoke(app, args)  # the same file twice changes nothing
    assert json.loads(again.stdout) | {"position": None} == {
        "file": str(file), "lines": 100_000, "accepted": 0, "duplicates": 100_000, "batches": 15, "position": None
    }  # fmt: skip

    runtime.engine.catch_up()
    summary = client_free_summary(runtime)
    for model in (*RATES, "llama3.2:1b"):
        mine = [r for r in records if r["model"] == model]
        row = summary["models"][model]
        assert row["inferences"] == len(mine)
        assert row["input_tokens"] == sum(r["input_tokens"] for r in mine)
        assert row["output_tokens"] == sum(r["output_tokens"] for r in mine)
        assert row["inference_cost"] == sum((expected_cost(r) for r in mine), Decimal(0))
    assert summary["total"]["inference_cost"] == sum((expected_cost(r) for r in records), Decimal(0))
    day = [d for d in summary["days"] if d["day"] == "2026-11-05"]
    assert sum(d["inferences"] for d in day) == sum(1 for r in records if r["at"].startswith("2026-11-05"))

    before = dump_views(runtime)
    runtime.engine.rebuild("costs")
    assert dump_views(runtime) == before


def client_free_summary(runtime: Runtime) -> dict:
    from projections.costs import cost_summary

    summary = cost_summary(runtime.db)
    return summary | {"models": {m["model"]: m for m in summary["models"]}}


def test_a_price_change_applies_to_records_after_its_date_only(client: TestClient, runtime: Runtime) -> None:
    client.post("/v1/prices", json={"model": "gpt-4o-mini", "effective_from": "2026-11-15T00:00:00Z",
                                    "input_per_1m": "1.00", "output_per_1m": "2.00"})  # fmt: skip
    records = [
        {
            "id": "before",
            "model": "gpt-4o-mini",
            "at": "2026-11-14T23:59:59Z",
            "input_tokens": 1_000_000,
            "output_tokens": 0,
        },
        {
            "id": "after",
            "model": "gpt-4o-mini",
            "at": "2026-11-15T00:00:00Z",
            "input_tokens": 1_000_000,
            "output_tokens": 0,
        },
    ]
    r = client.post("/v1/inferences", json={"records": records})
    assert (r.status_code, r.json()["accepted"]) == (200, 2)
    runtime.engine.catch_up()
    with runtime.db.read() as cur:
        costs = {row["id"]: row["cost"] for row in cur.execute("SELECT id, cost FROM inference_records").fetchall()}
    assert (Decimal(costs["before"]), Decimal(costs["after"])) == (Decimal("0.15"), Decimal("1.00"))


def test_a_retried_or_overlapping_batch_reports_duplicates_and_counts_them_once(
    client: TestClient, runtime: Runtime
) -> None:
    batch = random_records(50, seed=9)
    first = client.post("/v1/inferences", json={"records": batch})
    retry = client.post("/v1/inferences", json={"records": batch})  # the same batch: its id is taken
    # overlaps are found in the ledger's index of counted ids, which follows the log: read it first
    client.get("/v1/costs/summary", params={"min_position": first.json()["position"]})
    overlap = client.post("/v1/inferences", json={"records": batch[40:] + random_records(5, seed=10)})
    assert first.json()["accepted"] == 50
    assert (retry.json()["accepted"], len(retry.json()["duplicates"]), retry.json()["position"]) == (0, 50, None)
    assert (overlap.json()["accepted"], sorted(overlap.json()["duplicates"])) == (
        5,
        sorted(r["id"] for r in batch[40:]),
    )
    summary = client.get("/v1/costs/summary", params={"min_position": overlap.json()["position"]}).json()
    assert summary["total"]["inferences"] == 55


def test_an_invalid_batch_is_rejected_whole_listing_every_bad_record(client: TestClient, runtime: Runtime) -> None:
    good = {"model": "gpt-4o-mini", "input_tokens": 10, "output_tokens": 5}
    head = runtime.engine.log.head()
    r = client.post("/v1/inferences", json={"records": [
        {"id": "a"} | good,
        {"id": "b"} | good | {"input_tokens": -1},
        {"id": "c", "model": "mystery-model", "input_tokens": 1, "output_tokens": 1},
        {"id": "a"} | good,
        {"id": "d"} | good | {"cached_input_tokens": 11},
    ]})  # fmt: skip
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    errors = {e["index"]: e["message"] for e in r.json()["errors"]}
    assert set(errors) == {1, 2, 3, 4}
    assert "input_tokens must be 0 or more" in errors[1]
    assert "no price for model 'mystery-model'" in errors[2] and "ft-cli prices set mystery-model" in errors[2]
    assert "appears twice in the batch (also at 0)" in errors[3]
    assert "cached_input_tokens (11) cannot exceed input_tokens (10)" in errors[4]
    over = client.post("/v1/inferences", json={"records": [{"id": str(i)} | good for i in range(10_001)]})
    assert over.status_code == 422 and "at most 10,000 records" in over.json()["detail"]
    malformed = client.post("/v1/inferences", content=b'{"records": [', headers={"content-type": "application/json"})
    assert malformed.status_code == 400
    assert runtime.engine.log.head() == head


def test_a_malformed_jsonl_line_is_reported_by_its_number(runtime: Runtime, tmp_path: Path) -> None:
    file = tmp_path / "bad.jsonl"
    file.write_text('{"id": "1", "model": "gpt-4o-mini", "input_tokens": 1, "output_tokens": 1}\n\n{"id": 2,\n')
    head = runtime.engine.log.head()
    done = runner.invoke(app, ["import-inferences", str(file), "--database-url", runtime.config.url])
    assert done.exit_code == 1 and "line 3 is not valid JSON" in done.stderr
    assert runtime.engine.log.head() == head


@pytest.mark.parametrize("size", [3])
def test_cost_summary_through_the_cli(runtime: Runtime, tmp_path: Path, size: int) -> None:
    file = write_jsonl(tmp_path / "few.jsonl", random_records(size, seed=11))
    assert runner.invoke(app, ["import-inferences", str(file), "--database-url", runtime.config.url]).exit_code == 0
    done = runner.invoke(app, ["cost-summary", "--json", "--database-url", runtime.config.url])
    assert done.exit_code == 0 and json.loads(done.stdout)["total"]["inferences"] == size


def test_records_sent_again_before_the_ledger_has_counted_them_are_still_counted_once(runtime: Runtime) -> None:
    batch = random_records(30, seed=12)
    first = runtime.record_inferences(batch, actor="t")
    overlapping = runtime.record_inferences(batch[:10] + random_records(3, seed=13), actor="t")  # nothing projected yet
    assert (first.accepted, overlapping.accepted) == (30, 13)
    runtime.engine.catch_up()
    assert client_free_summary(runtime)["total"]["inferences"] == 33


def test_inference_costs_filter_by_model_and_time_range_with_exact_totals_and_pages(client: TestClient) -> None:
    records = random_records(40, seed=21)
    position = client.post("/v1/inferences", json={"records": records}).json()["position"]
    model, since, until = "gpt-4o-mini", "2026-11-05T00:00:00Z", "2026-11-20T23:59:59Z"
    wanted = [r for r in records if r["model"] == model and "2026-11-05" <= r["at"][:10] <= "2026-11-20"]
    seen, cursor, totals = [], None, None
    while True:
        params = {"model": model, "since": since, "until": until, "limit": 3, "min_position": position}
        page = client.get("/v1/costs/inferences", params=params | ({"cursor": cursor} if cursor else {})).json()
        seen += [r["id"] for r in page["records"]]
        totals = page["totals"]
        if not (cursor := page["next_cursor"]):
            break
    assert sorted(seen) == sorted(r["id"] for r in wanted) and len(seen) == len(set(seen))
    assert totals["inferences"] == len(wanted)
    assert Decimal(totals["inference_cost"]) == sum((expected_cost(r) for r in wanted), Decimal(0))
