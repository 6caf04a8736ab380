"""Anything a client sends, on both stores: the largest values the schemas admit are recorded and
every projection keeps up; values past the limits are refused with a 422 that names the field,
and nothing is recorded."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.cli.app import app
from api.runtime import Runtime
from domain.ab_testing import MAX_WEIGHT
from domain.pricing import MAX_RATE
from domain.roi import MAX_DAYS
from domain.values import (
    MAX_AMOUNT,
    MAX_CALLS,
    MAX_COUNT,
    MAX_EPOCHS,
    MAX_HOURS,
    MAX_LATENCY_MS,
    MAX_NAME,
    MAX_PLACES,
    MAX_TOKENS,
    MAX_TRAINING_TOKENS,
)

ALICE = {"X-Actor": "alice"}
#: the largest amount with every decimal place there is: 10^12 - 10^-18
TOP_AMOUNT = str(MAX_AMOUNT - Decimal(1).scaleb(-MAX_PLACES))
TOP_RATE = str(MAX_RATE - Decimal(1).scaleb(-MAX_PLACES))
LONG_NAME = "n" * MAX_NAME


def head(runtime: Runtime) -> int:
    return runtime.engine.log.head()


def assert_every_projection_is_current(client: TestClient, runtime: Runtime) -> None:
    position = head(runtime)
    assert runtime.engine.wait_for(position, timeout=20), runtime.engine.status()
    listed = client.get("/v1/projections").json()
    assert listed and all(p["position"] == p["head"] == position for p in listed), listed


def assert_refused(response: Any, field: str, *, slug: str | None = None) -> dict:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert field in problem["detail"], problem
    if slug:
        assert problem["type"] == f"/problems/{slug}"
    return problem


def cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


# ------------------------------------------------------------ the largest values


def test_the_largest_values_of_every_ingestion_and_command_route_are_recorded_and_every_projection_keeps_up(
    client: TestClient, runtime: Runtime
) -> None:
    price = {"model": "top-model", "effective_from": "2026-01-01T00:00:00Z", "input_per_1m": TOP_RATE,
             "cached_input_per_1m": TOP_RATE, "output_per_1m": TOP_RATE, "training_per_1m": TOP_RATE,
             "source": "s" * 500, "read_on": "r" * 40}  # fmt: skip
    assert client.post("/v1/prices", json=price, headers=ALICE).status_code == 201

    top = {"input_tokens": MAX_TOKENS, "cached_input_tokens": MAX_TOKENS, "output_tokens": MAX_TOKENS,
           "latency_ms": MAX_LATENCY_MS, "at": "2026-11-01T00:00:00Z", "tags": [LONG_NAME] * 20}  # fmt: skip
    records = [{"id": "given-" + "i" * 250, "model": LONG_NAME, "cost": TOP_AMOUNT} | top,
               {"id": "priced", "model": "top-model"} | top]  # fmt: skip
    r = client.post("/v1/inferences", json={"records": records}, headers=ALICE)
    assert r.status_code == 200 and r.json()["accepted"] == 2, r.text

    version = {"base_model": LONG_NAME, "job_id": LONG_NAME, "dataset_size": MAX_COUNT, "accuracy": 1,
               "cost": TOP_AMOUNT, "reason": "r" * 2000}  # fmt: skip
    r = client.post(f"/v1/models/{'m' * 64}/versions", json=version, headers=ALICE)
    assert r.status_code == 201, r.text

    job = {"job_id": "job-top", "model_name": LONG_NAME, "base_model": "top-model", "dataset_size": MAX_COUNT,
           "training_tokens": MAX_TRAINING_TOKENS, "epochs": MAX_EPOCHS, "training_hours": str(MAX_HOURS)}
    r = client.post("/v1/training-costs", json=job, headers=ALICE)
    assert r.status_code == 201, r.text
    # the catalog prices the largest job inside the money limit
    assert Decimal(r.json()["total_cost"]) == MAX_TRAINING_TOKENS * Decimal(TOP_RATE) / 1_000_000 <= MAX_AMOUNT

    example = {"example_id": LONG_NAME, "prompt": "p\t\n" * 1000, "response": "r\r\n", "rating": 5,
               "domain": LONG_NAME, "tags": [LONG_NAME] * 20}  # fmt: skip
    assert client.post("/v1/examples", json={"examples": [example]}).json()["accepted"] == 1

    test = {"test_id": "t" * 64, "model_a": LONG_NAME, "model_b": "b", "min_samples": MAX_COUNT,
            "weights": {"accuracy": MAX_WEIGHT, "latency": MAX_WEIGHT, "cost": MAX_WEIGHT}}  # fmt: skip
    assert client.post("/v1/ab-tests", json=test, headers=ALICE).status_code == 201
    sample = {"sample_id": LONG_NAME, "arm": "a", "correct": True, "latency_ms": MAX_LATENCY_MS, "cost": TOP_AMOUNT}
    r = client.post(f"/v1/ab-tests/{'t' * 64}/samples", json={"samples": [sample]})
    assert r.status_code == 200 and r.json()["accepted"] == 1, r.text

    predictions = [{"example_id": LONG_NAME, "prediction": "a\tb", "reference": "a\tb", "latency_ms": MAX_LATENCY_MS,
                    "cost": TOP_AMOUNT}]  # fmt: skip
    r = client.post("/v1/evaluations", headers=ALICE, json={"evaluation_id": "e" * 64, "model": LONG_NAME,
                                                            "model_type": "base", "predictions": predictions})
    assert r.status_code == 201, r.text

    assert_every_projection_is_current(client, runtime)
    totals = client.get(f"/v1/costs/models/{LONG_NAME}").json()
    assert (totals["inferences"], totals["input_tokens"], Decimal(totals["inference_cost"])) == (
        1, MAX_TOKENS, Decimal(TOP_AMOUNT))
    summary = client.get("/v1/costs/summary").json()["total"]
    assert (summary["inferences"], summary["output_tokens"]) == (2, 2 * MAX_TOKENS)


def test_the_largest_roi_inputs_answer_at_once(client: TestClient) -> None:
    body = {"training_cost": TOP_AMOUNT, "base_cost_per_call": TOP_AMOUNT, "ft_cost_per_call": "0",
            "base_accuracy": "0", "ft_accuracy": "1", "calls_per_day": str(MAX_CALLS // 36_500),
            "days": str(MAX_DAYS), "value_per_error": TOP_AMOUNT}  # fmt: skip
    r = client.post("/v1/costs/roi", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["calls"] == MAX_CALLS // 36_500 * 36_500 and r.json()["break_even_calls"] == 1


# ----------------------------------------------------------- just past the limits

NUL = "\x00"
RECORD = {"id": "r1", "model": "gpt-4o-mini", "input_tokens": 1, "output_tokens": 1}
VERSION = {"base_model": "b", "job_id": "j", "dataset_size": 1}
JOB_COST = {"job_id": "j1", "model_name": "m", "base_model": "b", "dataset_size": 1, "training_tokens": 1,
            "total_cost": "1"}  # fmt: skip
PRICE = {"model": "p", "effective_from": "2026-01-01T00:00:00Z", "input_per_1m": "1", "output_per_1m": "1"}
EXAMPLE = {"example_id": "e1", "prompt": "p", "response": "r"}
ROI = {"training_cost": "1", "base_cost_per_call": "1", "ft_cost_per_call": "0", "base_accuracy": "0.5",
       "ft_accuracy": "0.6", "calls": 10}  # fmt: skip

REFUSED = [
    # (route, body, field named in the answer)
    ("/v1/inferences", {"records": [RECORD | {"input_tokens": 2**62}]}, "input_tokens"),
    ("/v1/inferences", {"records": [RECORD | {"output_tokens": MAX_TOKENS + 1}]}, "output_tokens"),
    ("/v1/inferences", {"records": [RECORD | {"input_tokens": -1}]}, "input_tokens"),
    ("/v1/inferences", {"records": [RECORD | {"cost": "1e999999"}]}, "cost"),
    ("/v1/inferences", {"records": [RECORD | {"cost": "NaN"}]}, "cost"),
    ("/v1/inferences", {"records": [RECORD | {"cost": "1e-19"}]}, "cost"),
    ("/v1/inferences", {"records": [RECORD | {"latency_ms": MAX_LATENCY_MS * 2}]}, "latency_ms"),
    ("/v1/inferences", {"records": [RECORD | {"model": f"gpt{NUL}"}]}, "model"),
    ("/v1/inferences", {"records": [RECORD | {"id": f"r{NUL}1"}]}, "id"),
    ("/v1/inferences", {"records": [RECORD | {"tags": ["a\nb"]}]}, "tags[0]"),
    ("/v1/inferences", {"records": [RECORD | {"at": "0001-01-01T00:00:00+01:00"}]}, "at"),
    ("/v1/models/m/versions", VERSION | {"dataset_size": 7e22}, "dataset_size"),
    ("/v1/models/m/versions", VERSION | {"dataset_size": MAX_COUNT + 1}, "dataset_size"),
    ("/v1/models/m/versions", VERSION | {"cost": "1e999999"}, "cost"),
    ("/v1/models/m/versions", VERSION | {"reason": f"why{NUL}"}, "reason"),
    ("/v1/models/m/versions", VERSION | {"job_id": "j\x1b[31m"}, "job_id"),
    ("/v1/models/%2E%2E/versions", VERSION, "model name"),
    ("/v1/models/.hidden/versions", VERSION, "model name"),
    ("/v1/training-costs", JOB_COST | {"dataset_size": 1e21}, "dataset_size"),
    ("/v1/training-costs", JOB_COST | {"epochs": 1e21}, "epochs"),
    ("/v1/training-costs", JOB_COST | {"training_tokens": 2**62}, "training_tokens"),
    ("/v1/training-costs", JOB_COST | {"total_cost": "1e999999"}, "total_cost"),
    ("/v1/training-costs", JOB_COST | {"model_name": f"m{NUL}"}, "model_name"),
    ("/v1/prices", PRICE | {"input_per_1m": "1e999999"}, "input_per_1m"),
    ("/v1/prices", PRICE | {"output_per_1m": str(MAX_RATE + 1)}, "output_per_1m"),
    ("/v1/prices", PRICE | {"model": f"p{NUL}"}, "model"),
    ("/v1/examples", {"examples": [EXAMPLE | {"prompt": f"p{NUL}"}]}, "prompt"),
    ("/v1/examples", {"examples": [EXAMPLE | {"example_id": "e\t1"}]}, "example_id"),
    ("/v1/examples", {"examples": [EXAMPLE | {"tags": ["x\x7f"]}]}, "tags[0]"),
    ("/v1/ab-tests", {"test_id": "..", "model_a": "a", "model_b": "b"}, "test_id"),
    ("/v1/ab-tests", {"test_id": "t", "model_a": f"a{NUL}", "model_b": "b"}, "model_a"),
    ("/v1/ab-tests", {"test_id": "t", "model_a": "a", "model_b": "b", "min_samples": 2**62}, "min_samples"),
    ("/v1/datasets", {"dataset_id": ".."}, "dataset_id"),
    ("/v1/jobs", {"base_model": "gpt-4o-mini-2024-07-18", "job_id": ".."}, "job_id"),
    ("/v1/jobs", {"base_model": "gpt-4o-mini-2024-07-18", "job_id": "."}, "job_id"),
    ("/v1/evaluations", {"evaluation_id": "..", "model": "m", "model_type": "base",
                         "predictions": [{"prediction": "a", "reference": "a"}]}, "evaluation_id"),  # fmt: skip
    ("/v1/evaluations", {"model": "m", "model_type": "base",
                         "predictions": [{"prediction": f"a{NUL}", "reference": "a"}]}, "prediction"),  # fmt: skip
    ("/v1/evaluations", {"model": "m", "model_type": "base",
                         "predictions": [{"prediction": "a", "reference": "a", "cost": "1e999999"}]}, "cost"),
    ("/v1/costs/roi", ROI | {"training_cost": "1e999999"}, "training_cost"),
    ("/v1/costs/roi", ROI | {"calls": 2**62}, "calls"),
    ("/v1/costs/roi", ROI | {"value_per_error": "-1"}, "value_per_error"),
]


@pytest.mark.parametrize(("route", "body", "field"), REFUSED, ids=[f"{r}:{f}" for r, _, f in REFUSED])
def test_a_value_past_its_limit_is_refused_naming_the_field_and_nothing_is_recorded(
    client: TestClient, runtime: Runtime, route: str, body: dict, field: str
) -> None:
    before = head(runtime)
    assert_refused(client.post(route, json=body, headers=ALICE), field)
    assert head(runtime) == before


@pytest.mark.parametrize(
    ("route", "text", "field"),
    [
        ("/v1/models/m/versions", '{"base_model": "b", "job_id": "j", "dataset_size": 1, "accuracy": NaN}', "accuracy"),
        ("/v1/models/m/versions", '{"base_model": "b", "job_id": "j", "dataset_size": 1, "cost": Infinity}', "cost"),
        ("/v1/costs/roi", '{"training_cost": 1, "base_cost_per_call": 1, "ft_cost_per_call": 0, "base_accuracy": 0.5,'
                          ' "ft_accuracy": NaN, "calls": 1}', "ft_accuracy"),  # fmt: skip
    ],
)
def test_nan_and_infinity_are_refused_naming_the_field(
    client: TestClient, runtime: Runtime, route: str, text: str, field: str
) -> None:
    before = head(runtime)
    headers = ALICE | {"content-type": "application/json"}
    assert_refused(client.post(route, content=text, headers=headers), field)
    assert head(runtime) == before


def test_a_samples_batch_past_the_limits_is_refused_whole(client: TestClient, runtime: Runtime) -> None:
    assert client.post("/v1/ab-tests", json={"test_id": "t1", "model_a": "a", "model_b": "b"}).status_code == 201
    before = head(runtime)
    batch = [{"sample_id": "s1", "arm": "a", "correct": True, "cost": "1e999999"},
             {"sample_id": "s2", "arm": "b", "correct": True, "latency_ms": 1e300},
             {"sample_id": f"s{NUL}3", "arm": "b", "correct": True},
             {"sample_id": "s4", "arm": "b", "prediction": f"x{NUL}", "reference": "x"}]  # fmt: skip
    problem = assert_refused(client.post("/v1/ab-tests/t1/samples", json={"samples": batch}), "cost")
    messages = [e["message"] for e in problem["errors"]]
    assert [m.split(" ")[0] for m in messages] == ["cost", "latency_ms", "sample_id", "prediction"], messages
    assert head(runtime) == before


def test_a_roi_with_a_huge_exponent_is_refused_before_it_computes(client: TestClient) -> None:
    for value in ("1e999999", "1e-999999"):
        assert_refused(client.post("/v1/costs/roi", json=ROI | {"base_cost_per_call": value}), "base_cost_per_call")


def test_an_actor_header_with_a_control_character_is_refused_and_nothing_is_recorded(
    client: TestClient, runtime: Runtime
) -> None:
    before = head(runtime)
    r = client.post("/v1/models/m/versions", json=VERSION, headers={"X-Actor": b"ali\x85ce"})
    assert_refused(r, "X-Actor")
    r = client.post("/v1/models/m/versions", json=VERSION, headers={"X-Actor": "a" * (MAX_NAME + 1)})
    assert_refused(r, "X-Actor is too long")
    r = client.post("/v1/models/m/versions", json=VERSION, headers={"X-Actor": b"\x85", "Idempotency-Key": "k1"})
    assert_refused(r, "X-Actor")
    assert head(runtime) == before


def test_a_version_number_past_the_store_range_is_not_a_server_error(client: TestClient) -> None:
    r = client.post("/v1/models/m/versions", json=VERSION, headers=ALICE)
    assert r.status_code == 201
    assert_refused(client.post("/v1/models/m/deploy", json={"version": 2**64}), "version")
    for v in (str(2**64), "\u00b2", "0"):
        assert_refused(client.get(f"/v1/models/m/versions/{v}"), "version must be a number from 1")


@pytest.mark.parametrize(
    ("route", "params", "field"),
    [
        ("/v1/audit", {"model": f"m{NUL}"}, "model"),
        ("/v1/audit", {"actor": f"a{NUL}"}, "actor"),
        ("/v1/audit", {"type": "x" * (MAX_NAME + 1)}, "type"),
        ("/v1/costs/inferences", {"model": f"m{NUL}"}, "model"),
        ("/v1/prices", {"model": f"m{NUL}"}, "model"),
        ("/v1/examples", {"domain": f"d{NUL}"}, "domain"),
        ("/v1/costs/models/m%00", {}, "name"),
        ("/v1/costs/jobs/j%00", {}, "job_id"),
        ("/v1/datasets/d%00", {}, "dataset_id"),
        ("/v1/models/m%00", {}, "model name"),
    ],
)
def test_a_read_with_a_nul_in_a_name_is_refused_not_a_server_error(
    client: TestClient, route: str, params: dict, field: str
) -> None:
    assert_refused(client.get(route, params=params), field)


# --------------------------------------------------------------------- cursors

CRAFTED = [
    "!!!",
    "x" * 5000,
    cursor(2**64),
    cursor(-1),
    cursor(1.5),
    cursor(True),
    cursor(None),
    cursor({"a": 1}),
    cursor("a\x00b"),
    cursor([1, 2]),
    cursor(["a"]),
    cursor([2**70, "a"]),
    cursor(["\x00", "a"]),
    base64.urlsafe_b64encode(b"[" * 1500).decode(),
    base64.urlsafe_b64encode(b"\xff\xfe").decode(),
]
LISTS = ["/v1/audit", "/v1/costs/inferences", "/v1/models", "/v1/models/m/versions", "/v1/deployments",
         "/v1/ab-tests", "/v1/datasets", "/v1/examples", "/v1/jobs", "/v1/evaluations",
         "/v1/evaluations/e1/predictions"]  # fmt: skip


def test_every_list_route_answers_a_crafted_cursor_with_invalid_cursor(client: TestClient) -> None:
    assert client.post("/v1/models/m/versions", json=VERSION, headers=ALICE).status_code == 201
    predictions = [{"prediction": "a", "reference": "a"}]
    r = client.post("/v1/evaluations", json={"evaluation_id": "e1", "model": "m", "model_type": "base",
                                             "predictions": predictions})  # fmt: skip
    assert r.status_code == 201, r.text
    for route in LISTS:
        for crafted in CRAFTED:
            r = client.get(route, params={"cursor": crafted})
            assert r.status_code == 422, (route, crafted[:40], r.text)
            assert r.json()["type"] == "/problems/invalid-cursor", (route, r.text)


def test_a_next_cursor_still_pages_on(client: TestClient, runtime: Runtime) -> None:
    for i in range(2):
        record = RECORD | {"id": f"r{i}", "at": f"2026-11-0{i + 1}T00:00:00Z", "cost": "1"}
        assert client.post("/v1/inferences", json={"records": [record]}).status_code == 200
        assert client.post(f"/v1/models/m{i}/versions", json=VERSION, headers=ALICE).status_code == 201
    assert runtime.engine.wait_for(head(runtime), timeout=20)
    for route, key in (("/v1/costs/inferences", "records"), ("/v1/audit", "items"), ("/v1/models", "items"),
                       ("/v1/models/m0/versions", "items")):  # fmt: skip
        first = client.get(route, params={"limit": 1}).json()
        second = client.get(route, params={"limit": 1, "cursor": first["next_cursor"]})
        assert second.status_code == 200 and second.json()[key] != first[key], (route, second.text)


# ------------------------------------------------------------------------- CLI


def test_the_cli_refuses_values_past_the_limits_with_a_one_line_reason(database_url: str) -> None:
    runner = CliRunner()
    db = ["--database-url", database_url]
    assert runner.invoke(app, ["db", "init", *db]).exit_code == 0
    done = runner.invoke(app, ["audit", "--after", str(2**64), *db])
    assert done.exit_code == 2 and "--after" in done.output, done.output
    assert not isinstance(done.exception, OverflowError)
    done = runner.invoke(app, ["register-model", "bot", "b", "j", str(2**62), "--json", *db])
    assert done.exit_code == 1 and "dataset_size must be at most 1,000,000,000" in done.output, done.output
    done = runner.invoke(app, ["register-model", "..", "b", "j", "5", *db])
    assert done.exit_code == 1 and "not starting with a dot" in done.output, done.output
    listed = runner.invoke(app, ["list-models", "--json", *db])
    assert listed.exit_code == 0 and json.loads(listed.output) == [], listed.output


def test_the_openapi_document_states_the_limits_the_domain_checks(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    tokens = schemas["TrainingCostIn"]["properties"]["training_tokens"]
    assert (tokens["minimum"], tokens["maximum"]) == (0, MAX_TRAINING_TOKENS)
    assert schemas["RegisterVersionRequest"]["properties"]["dataset_size"]["maximum"] == MAX_COUNT
    test_id = schemas["ABTestIn"]["properties"]["test_id"]
    assert test_id["pattern"] == "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$"
    cost = schemas["RegisterVersionRequest"]["properties"]["cost"]["anyOf"][0]["anyOf"][0]
    assert cost["maximum"] == float(MAX_AMOUNT)
    assert schemas["RegisterVersionRequest"]["properties"]["reason"]["anyOf"][0]["pattern"].startswith("^[^\\x00")
