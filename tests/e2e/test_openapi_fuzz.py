"""The API against its own OpenAPI document: a valid, self-contained document, and a fuzzer that stays in CI.

Schemathesis generates requests for every operation of `/openapi.json` (valid ones, and ones that break the
schema), sends them to the app on a fresh store and checks each answer: no 5xx, and only status codes,
content types, headers and bodies the document declares. After every request the projections must still
reach the log's head: a crafted input must never stop a read model.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from api.http.app import MAX_BODY_BYTES, create_app
from api.runtime import Runtime
from api.settings import Settings

#: examples per operation and generation mode (valid, invalid): measured to keep both stores to about two minutes
EXAMPLES_PER_OPERATION = 10
SEED = 20260112

#: Values a client may send that random generation rarely hits: NUL and other control characters, numbers
#: past what the store can hold (63 bits, a float's range, a decimal's exponent), and cursors that decode to
#: the wrong thing (a huge number, a list, an object). Mixed into every field of the type, in both modes.
HOSTILE = {
    "string": ["\x00", "a\x00b", "\x1b[31m", "1e999999", "-1e999999", "NaN", "Infinity", "9" * 40,
               "OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5", "WzEsMl0", "eyJhIjoxfQ", "WyJ4Il0", "bnVsbA"],
    "integer": [2**63, 2**64, 10**30, -(2**63) - 1],
    "number": [1e308, -1e308, 5e-324],
}  # fmt: skip
#: reproducible in CI (fixed seed, derandomised), and nothing written to the checkout (no example database,
#: no run cache). The stateful phase needs links the document does not declare; no shrinking keeps a failing
#: run bounded in time (the failing request is reported as sent).
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "cache": {"enabled": False},
        "dictionaries": {f"hostile-{kind}": {"values": values} for kind, values in HOSTILE.items()},
        "generation": {
            "mode": "all",
            "max-examples": EXAMPLES_PER_OPERATION,
            "deterministic": True,
            "database": "none",
            "no-shrink": True,
            "dictionaries": {kind: {"dictionary": f"hostile-{kind}", "probability": 0.5} for kind in HOSTILE},
        },
        "phases": {"stateful": {"enabled": False}},
    }
)
#: every answer is checked for these; 5xx are checked by `no_server_error` below
CHECKS = [
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    unsupported_method,
]


def fuzz_app(runtime: Runtime) -> FastAPI:
    # No background follower: the test brings the projections up itself after each request and checks them.
    # A read with `min_position` past the head answers at once instead of waiting.
    settings_ = Settings(
        database_url=runtime.config.url, read_wait_seconds=0, poll_jobs=False, follow_projections=False
    )
    return create_app(settings_, runtime)


@pytest.fixture
def app(runtime: Runtime) -> FastAPI:
    return fuzz_app(runtime)


def no_server_error(response: Any, case: Any, runtime: Runtime) -> None:
    """A 5xx is a failure, except the documented 503 of a read asked to wait for a position past the head."""
    if response.status_code == 503 and response.headers.get("retry-after"):
        body = response.json()
        sent = parse_qs(urlsplit(response.request.url).query).get("min_position", ["-1"])
        wanted = float(sent[-1])  # the app reads the last of repeated parameters ("1e3" too)
        if body.get("type") == "/problems/projection-lagging" and wanted > runtime.engine.log.head():
            return
    assert response.status_code < 500, f"{case.operation.label} answered {response.status_code}: {response.text}"


def assert_projections_reach_the_head(runtime: Runtime, case: Any) -> None:
    runtime.engine.catch_up()
    head = runtime.engine.log.head()
    status = runtime.engine.status()
    behind = {s.name: s.position for s in status if s.position < head}
    assert not behind, f"after {case.operation.label}, projections stopped below the head {head}: {behind}"
    # once the engine quarantines events it cannot apply, none may be quarantined either
    quarantined = {s.name: q for s in status if (q := getattr(s, "quarantined", None))}
    assert not quarantined, f"after {case.operation.label}, events were quarantined: {quarantined}"


def document_app() -> FastAPI:
    """The app without a store (never opened): enough for its OpenAPI document and for routing."""
    return create_app(Settings(database_url="sqlite:///never-opened.sqlite3"))


#: the document the app serves at /openapi.json, loaded at collection so that every operation is a test of its
#: own (`schemathesis.pytest.from_fixture` would run them in one, but it does not work with pytest 9.2)
fuzzed = schemathesis.openapi.from_dict(document_app().openapi(), config=CONFIG)


@fuzzed.parametrize()
@settings(suppress_health_check=list(HealthCheck), deadline=None)
def test_every_operation_answers_only_what_its_openapi_declares_and_projections_keep_up(
    case: Any, runtime: Runtime, app: FastAPI
) -> None:
    response = case.call(app=app)
    no_server_error(response, case, runtime)
    case.validate_response(response, checks=CHECKS)
    assert_projections_reach_the_head(runtime, case)


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _resolves(document: dict[str, Any], ref: str) -> bool:
    if not ref.startswith("#/"):
        return False  # the document must be self-contained
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def test_the_openapi_document_is_valid_openapi_3_1_and_every_ref_resolves_inside_it() -> None:
    document = TestClient(document_app()).get("/openapi.json").json()  # no lifespan: the document needs no store
    assert document["openapi"].startswith("3.1")
    schemathesis.openapi.from_dict(document).validate()  # against the OpenAPI 3.1 meta-schema
    unresolved = sorted({ref for ref in _refs(document) if not _resolves(document, ref)})
    assert unresolved == []
    schemas = document["components"]["schemas"]
    assert {"InferenceRecordIn", "ChatMessageIn", "ExampleIn", "SampleIn", "Problem"} <= set(schemas)
    bodies = {"/v1/inferences": "InferenceBatchIn", "/v1/examples": "ExampleBatchIn",
              "/v1/ab-tests/{test_id}/samples": "SampleBatchIn"}  # fmt: skip
    for path, model in bodies.items():
        body = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": f"#/components/schemas/{model}"}


def test_every_error_an_operation_declares_is_problem_json_and_every_post_declares_its_body_errors() -> None:
    document = document_app().openapi()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            for status, response in responses.items():
                if int(status) >= 400:
                    assert set(response["content"]) == {"application/problem+json"}, (method, path, status)
            if method == "post":
                assert {"400", "401", "409", "413", "422", "503"} <= set(responses), (method, path)
    deploy = document["paths"]["/v1/models/{name}/deploy"]["post"]["responses"]
    assert {"404", "412"} <= set(deploy)


def _over_the_limit() -> bytes:
    return b'{"records": [' + b" " * MAX_BODY_BYTES + b"]}"


@pytest.mark.parametrize("idempotency_key", [None, "big-batch-1"])
@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_over_64_mib_is_a_problem_json_413_and_records_nothing(
    client: TestClient, runtime: Runtime, idempotency_key: str | None, chunked: bool
) -> None:
    head = runtime.engine.log.head()
    body = _over_the_limit()
    # chunked: no Content-Length, so the limit is found while reading, by the route or the idempotency check
    content: Any = (body[i : i + 2**20] for i in range(0, len(body), 2**20)) if chunked else body
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    r = client.post("/v1/inferences", content=content, headers=headers | {"content-type": "application/json"})
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] == 413 and "over 64 MiB" in r.json()["detail"]
    assert runtime.engine.log.head() == head
    if idempotency_key:  # the key was not used up: the same key with a body that fits goes through
        record = {"id": "r1", "model": "gpt-4o-mini", "input_tokens": 10, "output_tokens": 5}
        r = client.post("/v1/inferences", json={"records": [record]}, headers=headers)
        assert r.status_code == 200 and r.json()["accepted"] == 1, r.text


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("DELETE", "/v1/prices", "GET, POST"),  # two routes serve this path: one GET, one POST
    ("PUT", "/v1/models/support-bot", "GET"),
    ("GET", "/v1/models/support-bot/deploy", "POST"),
])  # fmt: skip
def test_a_method_a_path_does_not_take_is_a_405_whose_allow_lists_every_method_it_takes(
    method: str, path: str, allowed: str
) -> None:
    client = TestClient(document_app())
    r = client.request(method, path)
    assert r.status_code == 405
    assert r.headers["allow"] == allowed
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["detail"] == f"This endpoint takes {allowed}."
