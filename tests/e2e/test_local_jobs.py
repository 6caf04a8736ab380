"""Local training jobs that really run: a tiny Llama model trained on CPU through the service, on both stores.

The generated script runs as a subprocess with no hub access (HF_HUB_OFFLINE=1), on Unsloth's CPU
backend; where Unsloth cannot start (here: told to refuse the CPU), the same script trains with plain
transformers + PEFT + TRL. The job's events say which backend ran. Tests wait for the training process
itself (waitpid), never by sleeping.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adapters.local_jobs import LocalTrainer
from api.http.app import create_app
from api.runtime import Runtime
from api.settings import Settings
from sandbox.server import OllamaServer
from tests.support.tiny_model import build_tiny_llama

ALICE = {"X-Actor": "alice"}
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def examples() -> list[dict]:
    return [
        {"example_id": f"add-{i:03d}", "prompt": f"What is {i} plus {i}? Answer briefly.",
         "response": f"{i} plus {i} is {2 * i}, since doubling {i} gives {2 * i}.", "system": "You add numbers.",
         "rating": 5, "source": "distillation", "domain": "math", "task_type": "arithmetic"}
        for i in range(40)
    ]  # fmt: skip


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    texts = [e["system"] + " " + e["prompt"] + " " + e["response"] for e in examples()]
    return build_tiny_llama(tmp_path_factory.mktemp("tiny") / "tiny-llama", texts)


@pytest.fixture
def run_env() -> dict[str, str]:
    return dict(OFFLINE)


@pytest.fixture
def ollama_stand_in() -> OllamaServer:
    """Not started: a test starts it (its port is known already, so the server can be configured with it)."""
    return OllamaServer()


@pytest.fixture
def local(database_url: str, tmp_path: Path, run_env: dict[str, str], tiny_model: Path,
          ollama_stand_in: OllamaServer) -> Iterator[tuple[TestClient, Runtime]]:  # fmt: skip
    Runtime.init_schema(database_url)
    rt = Runtime.open(database_url, local_trainer=LocalTrainer(tmp_path / "runs", env=run_env))
    rt.collect_examples(examples(), actor="alice")
    rt.builds.build(actor="alice", dataset_id="adding", min_rating=4, train_ratio=0.8, seed=1)
    # The tiny model's folder lies in the data folder; publishing goes to the stand-in, configured by name.
    settings = Settings(database_url=database_url, read_wait_seconds=0.3, poll_jobs=False, data_dir=tiny_model.parent,
                        endpoints={"test-ollama": {"base_url": ollama_stand_in.root_url, "kind": "ollama"}})
    app = create_app(settings, rt)
    try:
        with TestClient(app) as client:
            yield client, rt
    finally:
        rt.close()


def config(**overrides) -> dict:
    return {"chat_template": "chatml", "max_seq_length": 128, "load_in_4bit": False, "lora_r": 4, "lora_alpha": 8,
            "target_modules": ["q_proj", "v_proj"], "max_steps": 8, "batch_size": 4, "gradient_accumulation": 1,
            "export": "merged_16bit"} | overrides  # fmt: skip


def start(client: TestClient, tiny_model: Path, **overrides) -> dict:
    r = client.post("/v1/jobs", headers=ALICE, json={
        "provider": "local", "base_model": str(tiny_model), "dataset_id": "adding", "model_name": "tiny-adder",
        "training_config": config(**overrides)})  # fmt: skip
    assert r.status_code == 201, r.text
    return r.json()


def wait_for_exit(job: dict) -> None:
    os.waitpid(int(job["provider_job_id"].removeprefix("pid-")), 0)  # the training process is our child


def sync(client: TestClient, job_id: str) -> dict:
    r = client.post(f"/v1/jobs/{job_id}/sync", headers=ALICE)
    assert r.status_code == 200, r.text
    return r.json()


def test_a_local_job_trains_for_real_and_registers_its_artifacts_and_cost(
    local: tuple[TestClient, Runtime], tiny_model: Path
) -> None:
    client, _ = local
    job = start(client, tiny_model)
    assert job["status"] == "running" and job["provider"] == "local"
    assert job["training"]["dataset_id"] == "adding"  # lineage: job -> dataset build -> examples
    estimate = job["estimate"]["time"]
    assert estimate["method"] == "flops" and estimate["parameters"] > 50_000 and estimate["seconds"] > 0
    wait_for_exit(job)

    done = sync(client, job["job_id"])
    assert done["status"] == "succeeded", done
    artifacts = Path(done["fine_tuned_model"])
    assert artifacts.name == "merged_16bit" and (artifacts / "model.safetensors").is_file()
    assert (artifacts / "config.json").is_file() and (artifacts / "tokenizer.json").is_file()
    events = client.get(f"/v1/jobs/{job['job_id']}/events").json()
    steps = [p["data"]["step"] for e in events for p in e["details"].get("provider_events", [])
             if p["type"] == "metrics"]  # fmt: skip
    assert steps == list(range(1, 9))
    started = next(p for e in events for p in e["details"].get("provider_events", []) if p["id"] == "local-started")
    assert started["data"]["backend"] == "unsloth" and started["data"]["device"] == "CPU"  # its CPU backend
    throughput = next(e for e in events if e["type"] == "ThroughputMeasured")["details"]
    assert throughput["hardware"] == "CPU" and throughput["train_seconds"] > 0 and throughput["counted_tokens"] > 0

    version = client.get("/v1/models/tiny-adder/versions/1").json()
    assert version["status"] == "READY" and version["job_id"] == job["job_id"]
    ready = client.get("/v1/audit", params={"model": "tiny-adder", "type": "VersionStatusChanged"}).json()["items"]
    assert str(artifacts) in ready[-1]["reason"]  # the registry's trail names the artifacts
    assert done["timing"]["wall_seconds"] > 0 and done["estimate"]["time"]["seconds"] > 0  # estimate beside actual
    cost = client.get(f"/v1/costs/jobs/{job['job_id']}").json()
    assert Decimal(cost["total_cost"]) == 0 and Decimal(cost["training_hours"]) > 0  # no GPU-hour price set
    assert sync(client, job["job_id"])["appended"] == 0

    again = start(client, tiny_model)  # the same model on the same hardware: calibrated by the first run
    assert again["estimate"]["time"]["method"] == "calibrated"
    wait_for_exit(again)
    assert sync(client, again["job_id"])["status"] == "succeeded"


@pytest.mark.parametrize("run_env", [OFFLINE | {"UNSLOTH_DISABLE_CPU_FALLBACK": "1"}])
def test_where_unsloth_cannot_start_the_same_script_trains_with_plain_trl(
    local: tuple[TestClient, Runtime], tiny_model: Path
) -> None:
    client, _ = local
    job = start(client, tiny_model)
    wait_for_exit(job)
    done = sync(client, job["job_id"])
    assert done["status"] == "succeeded" and (Path(done["fine_tuned_model"]) / "model.safetensors").is_file()
    events = client.get(f"/v1/jobs/{job['job_id']}/events").json()
    started = next(p for e in events for p in e["details"].get("provider_events", []) if p["id"] == "local-started")
    assert started["data"]["backend"] == "trl"


def test_cancelling_a_local_job_ends_its_process_group(local: tuple[TestClient, Runtime], tiny_model: Path) -> None:
    client, rt = local
    job = start(client, tiny_model, max_steps=1_000_000)
    r = client.post(f"/v1/jobs/{job['job_id']}/cancel", json={"reason": "too long"}, headers=ALICE)
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    status = rt.job_service.provider("local").wait_stopped(int(job["provider_job_id"].removeprefix("pid-")))
    assert status is not None and os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM
    assert client.get("/v1/models/tiny-adder/versions/1").json()["status"] == "FAILED"


def test_after_a_restart_a_running_job_is_reattached_and_a_dead_one_is_marked_failed(
    local: tuple[TestClient, Runtime], tiny_model: Path, tmp_path: Path
) -> None:
    client, rt = local
    job = start(client, tiny_model, max_steps=1_000_000)
    restarted = Runtime.open(rt.config.url, local_trainer=LocalTrainer(tmp_path / "runs", env=OFFLINE))
    try:
        still = restarted.job_service.sync(job["job_id"], actor="poller")
        assert still.job.status == "running"  # the process outlived the service, and is followed again
        pid = int(job["provider_job_id"].removeprefix("pid-"))
        os.killpg(pid, signal.SIGKILL)  # the machine killed it while the service was down
        os.waitpid(pid, 0)
        dead = restarted.job_service.sync(job["job_id"], actor="poller")
        assert dead.job.status == "failed" and dead.job.error["code"] == "process_died"
        assert "ended without finishing" in dead.job.error["message"]
        assert restarted.registry.load("tiny-adder").status_of(1).value == "FAILED"
    finally:
        restarted.close()


def test_bad_local_training_settings_get_clear_errors_and_record_nothing(
    local: tuple[TestClient, Runtime], tiny_model: Path
) -> None:
    client, rt = local
    head = rt.engine.log.head()
    cases = [
        ({"chat_template": "vicuna"}, "Unknown chat template 'vicuna'"),
        ({"export": "gguf"}, "A gguf export needs a quantization"),
        ({"epochs": 1}, "Give either epochs or max_steps, not both"),
        ({"target_modules": ["attn"]}, "Unknown LoRA target modules"),
        ({"lora_r": 0}, "lora_r must be a whole number from 1 to 512"),
        ({"learning_rate": 0}, "learning_rate must be more than 0"),
        ({"warmup": 3}, "Unknown training settings: warmup"),
    ]
    for overrides, message in cases:
        body = {"provider": "local", "base_model": str(tiny_model), "dataset_id": "adding",
                "training_config": config(**overrides)}
        r = client.post("/v1/jobs", headers=ALICE, json=body)
        assert r.status_code == 422 and message in r.json()["detail"], (overrides, r.text)
    r = client.post("/v1/jobs", headers=ALICE, json={"provider": "local", "base_model": "not a model",
                                                     "dataset_id": "adding", "training_config": config()})
    assert r.status_code == 422 and "neither a model name" in r.json()["detail"]
    assert rt.engine.log.head() == head


def test_a_finished_local_job_is_published_to_ollama_by_digest_and_named_for_evaluation(
    local: tuple[TestClient, Runtime], tiny_model: Path, ollama_stand_in: OllamaServer
) -> None:
    import hashlib

    client, _ = local
    job = start(client, tiny_model)
    early = client.post(f"/v1/jobs/{job['job_id']}/publish", json={"name": "tiny-adder:v1", "endpoint": "test-ollama"})
    assert early.status_code == 409 and "only a job that succeeded" in early.json()["detail"]
    wait_for_exit(job)
    done = sync(client, job["job_id"])
    with ollama_stand_in as ollama:
        r = client.post(f"/v1/jobs/{job['job_id']}/publish", headers=ALICE,
                        json={"name": "tiny-adder:v1", "endpoint": "test-ollama", "system": "You add numbers."})
        assert r.status_code == 200, r.text
        published = r.json()["published"]
        assert published == {"ollama_model": "tiny-adder:v1", "host": ollama.root_url, "family": "chatml",
                             "chat_url": ollama.root_url + "/v1/chat/completions"}  # fmt: skip
        model = ollama.state.models["tiny-adder:v1"]
        artifacts = Path(done["fine_tuned_model"])
        for name, digest in model["files"].items():  # every file went up as a blob under its own digest
            assert digest == "sha256:" + hashlib.sha256((artifacts / name).read_bytes()).hexdigest()
        assert {"model.safetensors", "config.json", "tokenizer.json"} <= set(model["files"])
        assert model["template"].startswith("{{ if .System }}<|im_start|>system") and model["system"]
        assert model["parameters"] == {"stop": ["<|im_start|>", "<|im_end|>"]}
        bad = client.post(f"/v1/jobs/{job['job_id']}/publish", json={"name": "no spaces allowed", "endpoint":
                                                                      "test-ollama"})  # fmt: skip
        assert bad.status_code == 409 and "invalid model name" in bad.json()["detail"]
    down = client.post(f"/v1/jobs/{job['job_id']}/publish", json={"name": "tiny-adder:v2", "endpoint": "test-ollama"})
    assert down.status_code == 409 and "Ollama is not reachable" in down.json()["detail"]
    last = client.get(f"/v1/jobs/{job['job_id']}/events").json()[-1]
    assert last["type"] == "Published" and last["actor"] == "alice"
    serving = client.get("/v1/models/tiny-adder/versions/1").json()["serving"]  # the version is served there
    assert serving["model"] == "tiny-adder:v1" and serving["base_url"].endswith("/v1")
    audit = client.get("/v1/audit", params={"model": "tiny-adder", "type": "ServingChanged"}).json()["items"]
    assert audit and audit[-1]["actor"] == "alice" and "published to Ollama" in audit[-1]["reason"]


def test_the_job_commands_of_the_cli_work_for_local_jobs(
    local: tuple[TestClient, Runtime], tiny_model: Path
) -> None:
    import json

    from typer.testing import CliRunner

    from api.cli.app import app

    _, rt = local
    runner = CliRunner()
    url = ["--database-url", rt.config.url]
    estimate = runner.invoke(app, ["estimate-training-time", str(tiny_model), "--dataset", "adding", "--max-steps",
                                   "8", "--json", *url])  # fmt: skip
    assert estimate.exit_code == 0 and json.loads(estimate.output)["method"] == "flops", estimate.output
    created = runner.invoke(app, ["create-local-job", str(tiny_model), "--dataset", "adding", "--chat-template",
                                  "chatml", "--no-load-in-4bit", "--max-steps", "1000000", "--json", *url],
                            env={"FT_LOCAL_RUNS_DIR": str(rt.job_service.provider("local").runs_dir)})  # fmt: skip
    assert created.exit_code == 0, created.output
    job = json.loads(created.output)
    assert job["provider"] == "local" and job["status"] == "running"
    cancelled = runner.invoke(app, ["cancel-job", job["job_id"], "--json", *url])
    assert cancelled.exit_code == 0 and json.loads(cancelled.output)["status"] == "cancelled", cancelled.output
    listed = runner.invoke(app, ["list-jobs", "--json", *url])
    assert [j["status"] for j in json.loads(listed.output)] == ["cancelled"]


def test_create_ollama_script_writes_a_runnable_script_its_config_and_a_modelfile(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from adapters.ollama import Export
    from api.cli.app import app
    from domain.errors import NotFound

    data = tmp_path / "train.jsonl"
    data.write_text(json.dumps({"messages": [{"role": "user", "content": "Hi"},
                                             {"role": "assistant", "content": "Hello!"}]}) + "\n")  # fmt: skip
    runner = CliRunner()
    r = runner.invoke(app, ["create-ollama-script", "unsloth/Llama-3.2-1B-Instruct-bnb-4bit", str(data),
                            "support-bot", "--max-steps", "60", "--output", str(tmp_path / "out"), "--json"])
    assert r.exit_code == 0, r.output
    files = json.loads(r.output)
    compile(Path(files["script"]).read_text(), "train.py", "exec")
    assert json.loads(Path(files["config"]).read_text())["max_steps"] == 60
    modelfile = Path(files["modelfile"]).read_text()
    assert "FROM ./merged_16bit" in modelfile and 'PARAMETER stop "<|eot_id|>"' in modelfile
    bad = runner.invoke(app, ["create-ollama-script", "unsloth/x-1B", str(data), "bot", "--chat-template", "vicuna"])
    assert bad.exit_code == 1 and "Unknown chat template 'vicuna'" in bad.output
    with pytest.raises(NotFound, match="are missing: train the model first"):
        Export.find(tmp_path / "nowhere", "merged_16bit")


def test_ollama_models_are_listed_and_deleted_through_the_cli(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from api.cli.app import app
    from sandbox.ollama_server import OllamaState
    from sandbox.server import OllamaServer

    state = OllamaState()
    state.models["support-bot:v1"] = {"base": False, "family": "llama", "size": 42, "modified_at": None}
    runner = CliRunner()
    with OllamaServer(state) as ollama:
        listed = runner.invoke(app, ["list-ollama-models", "--host", ollama.root_url, "--json"])
        assert [m["name"] for m in json.loads(listed.output)] == ["support-bot:v1"], listed.output
        deleted = runner.invoke(app, ["delete-ollama-model", "support-bot:v1", "--host", ollama.root_url, "--json"])
        assert deleted.exit_code == 0 and "support-bot:v1" not in state.models
        again = runner.invoke(app, ["delete-ollama-model", "support-bot:v1", "--host", ollama.root_url])
        assert again.exit_code == 1 and "Ollama has no model 'support-bot:v1'" in again.output
    down = runner.invoke(app, ["list-ollama-models", "--host", ollama.root_url])
    assert down.exit_code == 1 and "Ollama is not reachable" in down.output
