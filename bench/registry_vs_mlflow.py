"""Registry commands over HTTP, side by side with MLflow's model registry in the same run.

MLflow runs as users would start it (`mlflow server --workers 1`, SQLite backend store).
Both servers get the same keep-alive HTTP client and the same sequential calls:
registrations (MLflow: create_model_version) and deployments (MLflow: moving the
`production` alias with set_registered_model_alias).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import httpx2

from bench.common import ThrowawayPostgres, background, fresh_store, port, python_bin, rate, running_server

REGISTRATIONS = 300
DEPLOYS = 300
MLFLOW_CALLS = 150


def _ours(url: str) -> dict[str, float]:
    with running_server(url) as base, httpx2.Client(base_url=base, timeout=30) as c:
        def register(i: int) -> None:
            r = c.post("/v1/models/bench-model/versions", json={"base_model": "gpt-4o-mini", "job_id": f"ftjob-{i}",
                                                                "dataset_size": 1000 + i})  # fmt: skip
            assert r.status_code == 201, r.text

        def deploy(i: int) -> None:
            r = c.post("/v1/models/bench-model/deploy", json={"version": 1 + i % 2, "reason": "bench"})
            assert r.status_code == 200, r.text

        return {"registrations_per_s": rate(register, REGISTRATIONS), "deploys_per_s": rate(deploy, DEPLOYS)}


def _mlflow(tmp: Path) -> dict[str, Any]:
    p = port()
    store = tmp / "mlflow"
    store.mkdir(exist_ok=True)
    cmd = [python_bin("mlflow"), "server", "--workers", "1", "--host", "127.0.0.1", "--port", str(p),
           "--backend-store-uri", f"sqlite:///{store}/mlflow.db", "--default-artifact-root", str(store / "artifacts")]  # fmt: skip
    with background(cmd, ready="Application startup complete", env=dict(os.environ)), \
            httpx2.Client(base_url=f"http://127.0.0.1:{p}/api/2.0/mlflow", timeout=30) as c:  # fmt: skip
        r = c.post("/registered-models/create", json={"name": "bench-model"})
        assert r.status_code == 200, r.text

        def register(i: int) -> None:
            r = c.post("/model-versions/create", json={"name": "bench-model", "source": f"s3://bench/models/{i}"})
            assert r.status_code == 200, r.text

        def move_alias(i: int) -> None:
            r = c.post("/registered-models/alias", json={"name": "bench-model", "alias": "production",
                                                         "version": str(1 + i % 2)})  # fmt: skip
            assert r.status_code == 200, r.text

        import mlflow

        return {
            "version": mlflow.__version__,
            "registrations_per_s": rate(register, MLFLOW_CALLS),
            "deploys_per_s": rate(move_alias, MLFLOW_CALLS),
        }


def run(pg: ThrowawayPostgres, tmp: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for kind in ("sqlite", "postgresql"):
        with fresh_store(kind, pg, tmp, f"commands_{kind}") as url:
            results[kind] = _ours(url)
    results["mlflow"] = _mlflow(tmp)
    results["registrations_ratio"] = results["sqlite"]["registrations_per_s"] / results["mlflow"]["registrations_per_s"]
    results["deploys_ratio"] = results["sqlite"]["deploys_per_s"] / results["mlflow"]["deploys_per_s"]
    results["python"] = sys.version.split()[0]
    return results
