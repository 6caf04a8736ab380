"""Registry commands over HTTP, side by side with MLflow's model registry in the same run.

MLflow runs as users would start it (`mlflow server --workers 1`, SQLite backend store).
Sequential calls: registrations (MLflow: create_model_version) and deployments
(MLflow: moving the `production` alias with set_registered_model_alias). MLflow
is measured twice: through its official client, as its users call it, and with
raw REST calls from the same keep-alive HTTP client that measures ours.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import httpx2

from bench.common import (
    UVICORN_READY,
    ThrowawayPostgres,
    fresh_store,
    port,
    process_until_ready,
    python_bin,
    rate,
    running_server,
)

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
    import logging

    import mlflow
    from mlflow import MlflowClient

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    p = port()
    store = tmp / "mlflow"
    store.mkdir(exist_ok=True)
    cmd = [python_bin("mlflow"), "server", "--workers", "1", "--host", "127.0.0.1", "--port", str(p),
           "--backend-store-uri", f"sqlite:///{store}/mlflow.db",
           "--default-artifact-root", str(store / "artifacts")]  # fmt: skip
    base = f"http://127.0.0.1:{p}"
    with process_until_ready(cmd, ready=UVICORN_READY, env=dict(os.environ)):
        # As MLflow users drive it: the official client's create_model_version and set_registered_model_alias.
        client = MlflowClient(tracking_uri=base, registry_uri=base)
        client.create_registered_model("bench-client")
        via_client = {
            "registrations_per_s": rate(
                lambda i: client.create_model_version("bench-client", source=f"s3://bench/models/{i}"), MLFLOW_CALLS
            ),
            "deploys_per_s": rate(
                lambda i: client.set_registered_model_alias("bench-client", "production", str(1 + i % 2)),
                MLFLOW_CALLS,
            ),
        }
        # The server alone: the same REST calls from the keep-alive client that measures ours.
        with httpx2.Client(base_url=f"{base}/api/2.0/mlflow", timeout=30) as c:
            assert c.post("/registered-models/create", json={"name": "bench-rest"}).status_code == 200

            def register(i: int) -> None:
                r = c.post("/model-versions/create", json={"name": "bench-rest", "source": f"s3://bench/models/{i}"})
                assert r.status_code == 200, r.text

            def move_alias(i: int) -> None:
                r = c.post("/registered-models/alias", json={"name": "bench-rest", "alias": "production",
                                                             "version": str(1 + i % 2)})  # fmt: skip
                assert r.status_code == 200, r.text

            via_rest = {
                "registrations_per_s": rate(register, MLFLOW_CALLS),
                "deploys_per_s": rate(move_alias, MLFLOW_CALLS),
            }
    return {"version": mlflow.__version__, "client": via_client, "rest": via_rest}


def run(pg: ThrowawayPostgres, tmp: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for kind in ("sqlite", "postgresql"):
        with fresh_store(kind, pg, tmp, f"commands_{kind}") as url:
            results[kind] = _ours(url)
    results["mlflow"] = _mlflow(tmp)
    for path in ("client", "rest"):
        theirs = results["mlflow"][path]
        results[f"ratios_vs_{path}"] = {
            "registrations": results["sqlite"]["registrations_per_s"] / theirs["registrations_per_s"],
            "deploys": results["sqlite"]["deploys_per_s"] / theirs["deploys_per_s"],
        }
    results["python"] = sys.version.split()[0]
    return results
