"""The training-provider port (domain/training_provider.py) for local training: runs the
generated script and reads its progress back.

A local job's "provider job id" is `pid-<pid>`; its folder (script, dataset, log, output)
is `<runs dir>/<job id>`. Reading a job parses the whole log (one JSON line per logged
step: small) into provider events with stable ids, so the job aggregate's usual rule,
"record only the events not seen yet", makes syncing idempotent here too. A process
that is gone without a `finished` or `failed` line died: the reading says so, with
the log's last line, which is also how a restarted service tells a job it can reattach
to (still running) from one that died while it was down.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from adapters import unsloth
from adapters.paths import inside
from domain.errors import DomainError, InvalidInput, RuleViolation
from domain.job_specs import JobSpec, JobStatus, ProviderJob
from domain.jobs import FineTuningJob
from domain.local_training import LocalTrainingConfig
from domain.training_provider import JobData, ProviderError, UploadRecorder

#: what the generated training script imports (Unsloth is optional: without it, plain TRL trains)
TRAINING_PACKAGES = ("torch", "transformers", "peft", "trl", "datasets")


#: where runs go unless the settings say (FT_LOCAL_RUNS_DIR)
DEFAULT_RUNS_DIR = Path(".ft/runs")


def _event(record: dict[str, Any]) -> dict[str, Any]:
    kind = record.get("event")
    at = int(record.get("time", 0))
    if kind == "step":
        loss = record.get("loss")
        return {"id": f"local-step-{record['step']}", "created_at": at, "level": "info", "type": "metrics",
                "message": f"Step {record['step']}/{record.get('total_steps')}: training loss={loss}",
                "data": {k: record.get(k) for k in ("step", "total_steps", "epoch", "loss", "learning_rate",
                                                    "grad_norm", "num_tokens")} | {"train_loss": loss}}  # fmt: skip
    messages = {
        "started": lambda r: f"Training started with {r.get('backend')} on {r.get('device')}",
        "saved": lambda r: f"Saved the {r.get('export')} export to {r.get('artifacts')}",
        "finished": lambda r: f"Training finished: {r.get('steps')} steps in {r.get('train_runtime')} s",
        "failed": lambda r: f"Training failed: {r.get('reason')}",
    }
    message = messages.get(str(kind), lambda r: str(r))(record)
    data = {k: v for k, v in record.items() if k not in ("event", "time")}
    return {"id": f"local-{kind}", "created_at": at, "level": "error" if kind == "failed" else "info",
            "type": "message", "message": message, "data": data}  # fmt: skip


class LocalTrainer:
    name = "local"
    #: a local run trains on any number of examples (OpenAI's minimum of 10 does not apply)
    minimum_examples_apply = False

    def __init__(self, runs_dir: Path | None = None, *, python: str | None = None,
                 env: dict[str, str] | None = None) -> None:  # fmt: skip
        self.runs_dir = runs_dir or DEFAULT_RUNS_DIR
        self.python = python
        self.env = env or {}
        self.exit_statuses: dict[int, int] = {}
        self._reapers: dict[int, threading.Thread] = {}

    def files(self, job_id: str) -> unsloth.RunFiles:
        """The run's folder, which must resolve strictly inside the runs folder: a job id such as `..`
        or `.` must never write, run or read anything outside it (defence in depth beside the id rule)."""
        folder = inside(self.runs_dir, job_id)
        if folder is None or folder.parent != self.runs_dir.resolve():
            raise InvalidInput(f"Job id {job_id[:100]!r} does not name a folder inside the local runs folder "
                               "(FT_LOCAL_RUNS_DIR): use letters, digits, '-' and '_'.")  # fmt: skip
        return unsloth.RunFiles(folder)

    def check_packages(self) -> None:
        """A run imports the training packages; without them it would start, be recorded and fail
        only then: refuse first, saying what to install (checked in the interpreter that runs it)."""
        python = self.python or sys.executable
        if python == sys.executable:
            missing = [p for p in TRAINING_PACKAGES if importlib.util.find_spec(p) is None]
        else:
            probe = ("import importlib.util as u; "
                     f"print(' '.join(p for p in {TRAINING_PACKAGES!r} if u.find_spec(p) is None))")
            done = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=60, check=False)
            missing = done.stdout.split() if done.returncode == 0 else [f"a working Python at {python}"]
        if missing:
            raise RuleViolation(f"Local training needs {', '.join(missing)}, not installed in {python}: install "
                                "the local-training extra (`pip install 'ft-lifecycle[local]'`, or `make install`), "
                                "then try again. Nothing was recorded.")  # fmt: skip

    # ------------------------------------------------------------------ the port

    def describe(self) -> str:
        return f"local training in {self.runs_dir.resolve()}"

    def check_base_model(self, base_model: str) -> None:
        """Any model on the hub or in a folder: the training script loads it, and says so if it cannot."""

    def check_runnable(self, spec: JobSpec) -> None:
        self.files(spec.job_id)  # a job id that is no folder inside the runs folder: refused before recording
        self.check_packages()

    def check_ready(self) -> None:
        """Checked when the job was planned (check_runnable)."""

    def submit(self, job: FineTuningJob, data: JobData, record_upload: UploadRecorder) -> ProviderJob:
        try:
            return self.start(job.job_id, LocalTrainingConfig.validate(**job.hyperparameters), data("training"))
        except (DomainError, OSError) as e:
            detail = e.detail if isinstance(e, DomainError) else f"the training process could not start: {e}"
            raise ProviderError("rejected", detail, code="start_failed") from None

    def read(self, job: FineTuningJob) -> ProviderJob:
        return self.read_run(job.job_id, job.provider_job_id or "", job.seen_events)

    def cancel(self, job: FineTuningJob) -> ProviderJob:
        """Ends the run's whole process group. The reading comes from the log only: whether the process is
        still alive does not matter any more (and checking would reap its exit status, the parent's to read)."""
        self.stop(job.provider_job_id or "")
        fresh = self.new_events(job.job_id, job.seen_events)
        return ProviderJob(job.provider_job_id or "", JobStatus.CANCELLED.value, new_events=fresh)

    def delete_model(self, model: str) -> None:
        raise ProviderError("rejected", f"{model!r} is a local run's export, a folder: delete the folder itself.")

    def run_facts(self, job: FineTuningJob) -> dict[str, Any]:
        """What the run reported when it started and finished (device, backend, runtime, tokens, parameters)."""
        records, _ = unsloth.read_progress(self.files(job.job_id).log)
        facts: dict[str, Any] = {}
        for r in records:
            if r.get("event") in ("started", "finished"):
                facts |= {k: v for k, v in r.items() if k != "event"} | {f"{r['event']}_at": r.get("time")}
        return facts

    def serving_target(self, job: FineTuningJob) -> dict[str, str] | None:
        return None  # a run's export is served once it is published (JobService.publish)

    def parameter_count(self, base_model: str) -> int | None:
        return unsloth.parameter_count(base_model)

    def close(self) -> None:
        """A run goes on by itself; the service reattaches to it from its log."""

    # ------------------------------------------------------------------ runs

    def start(self, job_id: str, config: LocalTrainingConfig, dataset: bytes) -> ProviderJob:
        files = unsloth.write_run(self.files(job_id).folder, config, dataset, job_id=job_id)
        pid = unsloth.start(files, python=self.python, env=self.env)
        return ProviderJob(provider_job_id=f"pid-{pid}", status="running")

    @staticmethod
    def pid(provider_job_id: str) -> int:
        return int(provider_job_id.removeprefix("pid-"))

    def new_events(self, job_id: str, seen: set[str] | frozenset[str] = frozenset()) -> list[dict[str, Any]]:
        """The run's progress lines not recorded yet, as provider events (reads the log only)."""
        records, _ = unsloth.read_progress(self.files(job_id).log)
        return [e for e in map(_event, records) if e["id"] not in seen]

    def read_run(self, job_id: str, provider_job_id: str, seen: set[str] | frozenset[str] = frozenset()) -> ProviderJob:
        files = self.files(job_id)
        records, _ = unsloth.read_progress(files.log)
        fresh = [e for e in map(_event, records) if e["id"] not in seen]
        by_kind = {r.get("event"): r for r in records}
        common = {"provider_job_id": provider_job_id, "new_events": fresh}
        if "finished" in by_kind:
            done = by_kind["finished"]
            return ProviderJob(status="succeeded", fine_tuned_model=done.get("artifacts"),
                               trained_tokens=done.get("tokens"), finished_at=int(done.get("time", 0)),
                               result_files=[done.get("artifacts")], **common)  # fmt: skip
        if "failed" in by_kind:
            return ProviderJob(status="failed", error={"code": "training_error",
                                                       "message": by_kind["failed"].get("reason")}, **common)
        if unsloth.alive(self.pid(provider_job_id), files.script):
            return ProviderJob(status="running", **common)
        tail = unsloth.log_tail(files.log, 1) or "(the log is empty)"
        return ProviderJob(status="failed", error={"code": "process_died", "message": (
            f"The training process {provider_job_id} ended without finishing; the last line of {files.log}: {tail}")},
            **common)  # fmt: skip

    def stop(self, provider_job_id: str) -> None:
        """Ends the run's process group; a run this process started is reaped in the background."""
        pid = self.pid(provider_job_id)
        unsloth.stop(pid)

        def reap() -> None:
            try:
                self.exit_statuses[pid] = os.waitpid(pid, 0)[1]
            except ChildProcessError:  # started by another process (before a restart): not ours to reap
                pass

        self._reapers[pid] = threading.Thread(target=reap, name=f"reap-{pid}", daemon=True)
        self._reapers[pid].start()

    def wait_stopped(self, pid: int, timeout: float = 30.0) -> int | None:
        """The exit status of a run this process cancelled (os.waitpid's), once it has ended."""
        reaper = self._reapers.get(pid)
        if reaper is not None:
            reaper.join(timeout)
        return self.exit_statuses.get(pid)
