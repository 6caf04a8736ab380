"""Secrets go only where they belong, and paths stay inside their folders (issue 12), on both stores.

Endpoints are tiny recording servers on 127.0.0.1 that speak /v1/chat/completions and keep the
Authorization header of every request, so a test sees which key reached which address.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adapters.local_jobs import LocalTrainer
from api.http.app import create_app
from api.runtime import Runtime
from api.settings import Settings
from tests.support.openai_sandbox import SECRET_KEY, chat_file

ALICE = {"X-Actor": "alice"}
BASE = "gpt-4o-mini-2024-07-18"


class Recorder:
    """An OpenAI-compatible chat endpoint that records (path, Authorization) of every request."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str | None]] = []
        #: when set, every request gets OpenAI's 401, which quotes the key it was sent
        self.refuse = False
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self._body()
                key = self.headers.get("authorization")
                recorder.requests.append((self.path, key))
                if recorder.refuse:
                    status, reply = 401, {"error": {"message": f"Incorrect API key provided: {key}.",
                                                    "type": "invalid_request_error", "code": "invalid_api_key"}}
                else:
                    model = json.loads(body).get("model") if self.path.endswith("/completions") else None
                    status, reply = 200, {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
                                          "choices": [{"index": 0, "finish_reason": "stop", "message": {
                                              "role": "assistant", "content": "The billing team."}}],
                                          "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}}
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                if self.headers.get("transfer-encoding") != "chunked":
                    return self.rfile.read(int(self.headers.get("content-length", 0)))
                body = b""
                while size := int(self.rfile.readline().strip() or b"0", 16):
                    body += self.rfile.read(size)
                    self.rfile.readline()
                self.rfile.readline()
                return body

            def log_message(self, *args: object) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def keys(self) -> set[str | None]:
        return {key for _, key in self.requests}


@contextmanager
def recording() -> Iterator[Recorder]:
    recorder = Recorder()
    thread = threading.Thread(target=recorder.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        recorder.server.shutdown()
        recorder.server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def endpoints() -> Iterator[tuple[Recorder, Recorder, Recorder]]:
    """Two configured endpoints, and a third address a client might name."""
    with recording() as a, recording() as b, recording() as client_chosen:
        yield a, b, client_chosen


def app_for(runtime: Runtime, **settings: object) -> TestClient:
    return TestClient(create_app(Settings(database_url=runtime.config.url, read_wait_seconds=0.3, poll_jobs=False,
                                          **settings), runtime))  # fmt: skip


def with_dataset(runtime: Runtime) -> None:
    examples = [{"example_id": f"t-{i}", "prompt": f"Which team handles ticket {i}?",
                 "response": f"Ticket {i} goes to the billing team.", "rating": 5, "source": "distillation"}
                for i in range(6)]  # fmt: skip
    runtime.collect_examples(examples, actor="alice")
    runtime.builds.build(actor="alice", dataset_id="tickets", train_ratio=0.5, seed=1)


def live(endpoint: str, evaluation_id: str = "live-1") -> dict:
    return {"evaluation_id": evaluation_id, "model": "support-bot", "model_type": "fine_tuned", "endpoint": endpoint,
            "dataset_id": "tickets", "split": "all", "concurrency": 2}


def stored_bytes(runtime: Runtime) -> bytes:
    notifications = runtime.registry.recorder.select_notifications(start=1, limit=1_000_000)
    return b"".join(n.topic.encode() + n.state for n in notifications)


def test_a_live_evaluation_naming_a_client_url_is_refused_and_that_url_receives_nothing(
    runtime: Runtime, endpoints: tuple[Recorder, Recorder, Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, _, client_chosen = endpoints
    monkeypatch.setenv("OPENAI_API_KEY", SECRET_KEY)
    with_dataset(runtime)
    client = app_for(runtime, endpoints={"team-a": {"base_url": a.url, "api_key": "sk-team-a-0001"}})
    head = runtime.engine.log.head()
    for endpoint in (client_chosen.url, "http://169.254.169.254/latest/meta-data", "no-such-endpoint"):
        r = client.post("/v1/evaluations", json=live(endpoint), headers=ALICE)
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", r.text
        detail = r.json()["detail"]
        assert "configured endpoints are ollama, openai, team-a" in detail and "FT_ENDPOINTS=" in detail
        assert r.json()["type"] == "/problems/unknown-endpoint"
    assert client_chosen.requests == [] and a.requests == []
    assert runtime.engine.log.head() == head  # nothing recorded
    assert client.get("/v1/evaluations/live-1").status_code == 404


def test_a_configured_endpoint_receives_its_own_key_and_no_other(
    runtime: Runtime, endpoints: tuple[Recorder, Recorder, Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, client_chosen = endpoints
    monkeypatch.setenv("OPENAI_API_KEY", SECRET_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", client_chosen.url)  # the implicit `openai` endpoint: not asked for here
    with_dataset(runtime)
    client = app_for(runtime, endpoints={"team-a": {"base_url": a.url, "api_key": "sk-team-a-0001"},
                                         "team-b": {"base_url": b.url, "api_key": "sk-team-b-0002"}})
    r = client.post("/v1/evaluations", json=live("team-a"), headers=ALICE)
    assert r.status_code == 201, r.text
    assert r.json()["metrics"]["n"] == 6 and r.json()["source"]["endpoint_name"] == "team-a"
    assert len(a.requests) == 6 and a.keys() == {"Bearer sk-team-a-0001"}
    assert b.requests == [] and client_chosen.requests == []
    r = client.post("/v1/evaluations", json=live("team-b", "live-2"), headers=ALICE)
    assert r.status_code == 201 and b.keys() == {"Bearer sk-team-b-0002"} and len(a.requests) == 6


def test_the_openai_key_never_appears_in_a_response_a_stored_event_or_a_log_line(
    runtime: Runtime, endpoints: tuple[Recorder, Recorder, Recorder], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    a, _, _ = endpoints
    monkeypatch.setenv("OPENAI_API_KEY", SECRET_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", a.url)
    caplog.set_level(logging.DEBUG)
    with_dataset(runtime)
    client = app_for(runtime)
    a.refuse = True  # the endpoint answers as OpenAI does to a wrong key: quoting it
    refused = client.post("/v1/evaluations", json=live("openai"), headers=ALICE)
    assert refused.status_code == 409 and "AuthenticationError" in refused.json()["detail"], refused.text
    a.refuse = False
    done = client.post("/v1/evaluations", json=live("openai"), headers=ALICE)  # resumes and completes
    assert done.status_code == 201, done.text
    assert a.keys() == {f"Bearer {SECRET_KEY}"}  # the key did go to its own endpoint...
    responses = [refused.text, done.text, client.get("/v1/evaluations").text,
                 client.get("/v1/evaluations/live-1/predictions").text]  # fmt: skip
    assert all(SECRET_KEY not in text for text in responses)  # ...and nowhere else
    assert SECRET_KEY[-12:] not in refused.text  # not even the part OpenAI quotes
    assert SECRET_KEY.encode() not in stored_bytes(runtime)
    assert caplog.records and not [r for r in caplog.records if SECRET_KEY in r.getMessage()]


def test_publishing_over_http_takes_a_configured_ollama_endpoint_name_never_a_host(
    runtime: Runtime, endpoints: tuple[Recorder, Recorder, Recorder]
) -> None:
    a, _, client_chosen = endpoints
    client = app_for(runtime, endpoints={"team-a": {"base_url": a.url, "api_key": "sk-team-a-0001"}})
    head = runtime.engine.log.head()
    cases = [
        ({"host": client_chosen.url}, "host is not taken over HTTP: give endpoint"),
        ({"endpoint": client_chosen.url}, "not a URL: configured ollama endpoints are ollama."),
        ({"endpoint": "team-a"}, "not 'team-a': configured ollama endpoints are ollama."),  # an OpenAI endpoint
    ]
    for fields, message in cases:
        r = client.post("/v1/jobs/job-1/publish", json={"name": "support-bot:v1"} | fields, headers=ALICE)
        assert r.status_code == 422 and message in r.json()["detail"], (fields, r.text)
    assert client_chosen.requests == [] and a.requests == [] and runtime.engine.log.head() == head


@pytest.fixture
def data_folder(tmp_path: Path) -> Path:
    """A data folder with one good file, beside files outside it and a symlink inside that leads out."""
    data = tmp_path / "data"
    data.mkdir()
    chat_file(data / "train.jsonl", 12)
    chat_file(tmp_path / "outside.jsonl", 12)
    (data / "leak.jsonl").symlink_to(tmp_path / "outside.jsonl")
    (data / "models").mkdir()
    return data


def test_files_outside_the_data_folder_are_refused_with_one_message_and_nothing_recorded(
    runtime: Runtime, data_folder: Path
) -> None:
    client = app_for(runtime, data_dir=data_folder)
    head = runtime.engine.log.head()
    ok = client.post("/v1/jobs", json={"base_model": BASE, "training_file": "train.jsonl", "dry_run": True})
    assert ok.status_code == 200 and ok.json()["examples"] == 12, ok.text  # inside: read as before
    outside = data_folder.parent / "outside.jsonl"
    escapes = ["/etc/shadow", "/etc/no-such-file", "../outside.jsonl", str(outside), "leak.jsonl", ".."]
    for field in ("training_file", "validation_file"):
        expected = (f"{field} must name a file under the data folder FT_DATA_DIR ({data_folder.resolve()}): give a "
                    "path relative to it, such as train.jsonl, and put the file there.")  # fmt: skip
        for path in escapes:
            for dry_run in (True, False):
                body = {"base_model": BASE, "training_file": "train.jsonl", "dry_run": dry_run} | {field: path}
                r = client.post("/v1/jobs", json=body, headers=ALICE)
                assert r.status_code == 422 and r.json()["detail"] == expected, (field, path, r.text)
    base_expected = (f"base_model must name a folder under the data folder FT_DATA_DIR ({data_folder.resolve()}): "
                     "give a path relative to it, such as models/base, and put the folder there.")  # fmt: skip
    for folder in ("/etc", "/root", "./../", str(data_folder.parent)):
        r = client.post("/v1/jobs", json={"provider": "local", "base_model": folder, "training_file": "train.jsonl",
                                          "training_config": {"max_steps": 1}}, headers=ALICE)  # fmt: skip
        assert r.status_code == 422 and r.json()["detail"] == base_expected, (folder, r.text)
    assert runtime.engine.log.head() == head
    assert client.get("/v1/jobs").json()["items"] == []


def test_a_local_job_id_of_dot_dot_or_dot_never_writes_outside_the_runs_folder(
    database_url: str, tmp_path: Path, data_folder: Path
) -> None:
    Runtime.init_schema(database_url)
    runs = tmp_path / "area" / "runs"
    rt = Runtime.open(database_url, local_trainer=LocalTrainer(runs, python="/bin/false"))
    try:
        client = app_for(rt, data_dir=data_folder)
        head = rt.engine.log.head()
        for job_id in ("..", ".", "../../escaped"):
            r = client.post("/v1/jobs", headers=ALICE, json={
                "provider": "local", "base_model": "unsloth/Llama-3.2-1B-Instruct", "training_file": "train.jsonl",
                "job_id": job_id, "training_config": {"max_steps": 1}})  # fmt: skip
            assert r.status_code == 422, (job_id, r.text)
        written = {p.name for p in (tmp_path / "area").rglob("*")} if (tmp_path / "area").exists() else set()
        assert not written & {"train.py", "train.jsonl", "train.log"}
        assert not (tmp_path / "escaped").exists() and rt.engine.log.head() == head
    finally:
        rt.close()


def test_the_cli_takes_a_configured_endpoint_name_and_sends_that_endpoint_its_own_key(
    runtime: Runtime, endpoints: tuple[Recorder, Recorder, Recorder]
) -> None:
    from typer.testing import CliRunner

    from api.cli.app import app

    a, b, _ = endpoints
    with_dataset(runtime)
    env = {"FT_ENDPOINTS": json.dumps({"team-a": {"base_url": a.url, "api_key": "sk-team-a-0001"}}),
           "OPENAI_API_KEY": SECRET_KEY}  # fmt: skip
    done = CliRunner().invoke(app, ["run-evaluation", "support-bot", "--endpoint", "team-a", "--dataset", "tickets",
                                    "--split", "all", "--json", "--database-url", runtime.config.url], env=env)
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["predicted_now"] == 6 and a.keys() == {"Bearer sk-team-a-0001"}
    unknown = CliRunner().invoke(app, ["run-evaluation", "support-bot", "--endpoint", "team-c", "--dataset",
                                       "tickets", "--database-url", runtime.config.url], env=env)  # fmt: skip
    assert unknown.exit_code != 0 and "configured endpoints are ollama, openai, team-a" in unknown.output
    keyless = CliRunner().invoke(app, ["run-evaluation", "support-bot", "--endpoint", b.url, "--dataset", "tickets",
                                       "--split", "all", "--evaluation-id", "keyless", "--json", "--database-url",
                                       runtime.config.url], env=env)  # a URL gets no key unless asked for
    assert keyless.exit_code == 0, keyless.output
    assert SECRET_KEY not in "".join(b.keys())
    _, c = b, endpoints[2]
    by_url = CliRunner().invoke(app, ["run-evaluation", "support-bot", "--endpoint", c.url, "--dataset", "tickets",
                                      "--split", "all", "--evaluation-id", "by-url", "--api-key-env", "OPENAI_API_KEY",
                                      "--json", "--database-url", runtime.config.url], env=env)  # the user's own key
    assert by_url.exit_code == 0, by_url.output
    assert c.keys() == {f"Bearer {SECRET_KEY}"}


def test_publishing_sends_an_ollama_endpoint_its_own_key_and_never_the_environments(
    endpoints: tuple[Recorder, Recorder, Recorder], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from adapters import ollama as ollama_adapter

    a, b, _ = endpoints
    monkeypatch.setenv("OLLAMA_API_KEY", SECRET_KEY)  # the `ollama` package would add it to any request
    blob = tmp_path / "model.safetensors"
    blob.write_bytes(b"weights")
    ollama_adapter.client(a.url.removesuffix("/v1")).create_blob(blob)
    ollama_adapter.client(b.url.removesuffix("/v1"), "sk-ollama-b").create_blob(blob)
    assert a.requests == [("/api/blobs/sha256:" + hashlib.sha256(b"weights").hexdigest(), None)]
    assert b.keys() == {"Bearer sk-ollama-b"}


def test_the_cli_publishes_only_to_an_ollama_endpoint_when_given_a_name(
    runtime: Runtime, endpoints: tuple[Recorder, Recorder, Recorder]
) -> None:
    from typer.testing import CliRunner

    from api.cli.app import app

    a, _, _ = endpoints
    env = {"FT_ENDPOINTS": json.dumps({"team-a": {"base_url": a.url, "api_key": "sk-team-a-0001"}})}
    refused = CliRunner().invoke(app, ["publish-to-ollama", "job-1", "support-bot:v1", "--host", "team-a",
                                       "--database-url", runtime.config.url], env=env)  # fmt: skip
    assert refused.exit_code != 0 and "configured ollama endpoints are ollama" in refused.output
    assert a.requests == []
