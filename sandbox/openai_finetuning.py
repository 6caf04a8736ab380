"""A local sandbox that speaks OpenAI's fine-tuning API: files, jobs, events,
checkpoints and models, for tests and for trying the lifecycle without an account.

(Long on purpose: it mirrors one provider API, whose state machine and routes are checked
against each other by reading them together.)

It is stateful and behaves like the real service, on a shorter clock: a job
goes validating_files -> queued -> running -> succeeded, emitting events and
step metrics on the way; a bad file fails it (`invalid_n_examples` under 10
examples, `invalid_training_file` for malformed JSONL); trained_tokens is
counted from the file with tiktoken. Progress is computed from elapsed time on
every request, so no background thread is needed.

Served under `/v1` (OpenAI's paths) and `/openai` (Azure OpenAI's, with
`?api-version=`). Paths under `/_sandbox` are its own controls: queue faults
(a 429, a 500) or refuse training as OpenAI does in 2026 (403
`training_not_available`).
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, Response

from adapters import tokens
from domain.datasets import default_epochs
from sandbox.chat_completions import ChatSettings, chat_router

FINE_TUNABLE = (
    "gpt-4.1-2025-04-14", "gpt-4.1-mini-2025-04-14", "gpt-4.1-nano-2025-04-14", "gpt-4o-2024-08-06",
    "gpt-4o-mini-2024-07-18", "gpt-3.5-turbo-0125", "gpt-3.5-turbo-1106",
)  # fmt: skip
ORGANIZATION = "org-sandbox"
MAX_METRIC_EVENTS = 100


@dataclass
class Timing:
    """Seconds each phase takes (a real job takes minutes to hours)."""

    validate: float = 0.5
    queue: float = 0.5
    train: float = 2.0


@dataclass
class Fault:
    status: int
    method: str | None
    path: str | None
    times: int
    code: str | None = None
    #: seconds sent as Retry-After; without, `retry-after-ms: 20` (the SDK then retries at once)
    retry_after: float | None = None


@dataclass
class SandboxJob:
    id: str
    created: float
    body: dict[str, Any]
    n_epochs: int | None = None
    batch_size: int | None = None
    examples: int = 0
    tokens_per_epoch: int = 0
    error: dict[str, Any] | None = None
    cancelled_at: float | None = None
    paused_at: float | None = None
    paused_for: float = 0.0
    events: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    fine_tuned_model: str | None = None
    result_file: str | None = None
    validated: bool = False


def _error(status: int, message: str, *, code: str | None = None, param: str | None = None,
           type_: str = "invalid_request_error", headers: dict[str, str] | None = None) -> JSONResponse:  # fmt: skip
    return JSONResponse({"error": {"message": message, "type": type_, "param": param, "code": code}},
                        status_code=status, headers=headers)  # fmt: skip


class SandboxState:
    def __init__(self, timing: Timing | None = None, *, refuse_training: bool = False,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self.timing = timing or Timing()
        #: seconds since the epoch; tests pass a clock they move by hand, so no test waits on real time
        self.clock = clock
        self.refuse_training = refuse_training
        #: when set, other keys get OpenAI's 401, which quotes part of the key
        self.valid_keys: set[str] | None = None
        #: model calls (chat completions): what they answer, and how they misbehave on purpose
        self.chat = ChatSettings()
        self.files: dict[str, dict[str, Any]] = {}
        self.contents: dict[str, bytes] = {}
        self.jobs: dict[str, SandboxJob] = {}
        self.models: dict[str, dict[str, Any]] = {}
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request, for tests
        self.lock = threading.RLock()
        self._counter = 0

    def new_id(self, prefix: str, seed: str) -> str:
        self._counter += 1
        return prefix + hashlib.sha256(f"{seed}:{self._counter}:{time.time_ns()}".encode()).hexdigest()[:24]

    def take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if (fault.method in (None, method)) and (fault.path is None or path.endswith(fault.path)):
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    # -------------------------------------------------------------- job clock

    def advance(self, job: SandboxJob, now: float) -> str:
        """Brings a job up to `now` and returns its status."""
        t = self.timing
        if job.cancelled_at is not None:
            now = min(now, job.cancelled_at)
        active = (job.paused_at if job.paused_at is not None else now) - job.created - job.paused_for
        self._emit(job, job.created, "info", f"Validating training file: {job.body['training_file']}")
        if active < t.validate:
            return self._final(job, "validating_files")
        if not job.validated:
            self._validate(job)
        if job.error is not None:
            self._emit(job, job.created + t.validate, "error", job.error["message"])
            return "failed"
        self._emit(job, job.created + t.validate, "info", "Files validated, moving job to queued state")
        if active < t.validate + t.queue:
            return self._final(job, "queued")
        start = job.created + t.validate + t.queue  # pauses happen only while running
        self._emit(job, start, "info", "Fine-tuning job started")
        steps = self.total_steps(job)
        done = min(steps, int((active - t.validate - t.queue) / t.train * steps))
        every = max(1, math.ceil(steps / MAX_METRIC_EVENTS))
        for step in range(1, done + 1):
            if step % every == 0 or step == steps:
                self._metrics(job, step, steps, start + t.train * step / steps)
        per_epoch = max(1, steps // self.epochs(job))
        for step in range(per_epoch, done + 1, per_epoch):
            self._checkpoint(job, step, start + t.train * step / steps)
        if done < steps:
            return self._final(job, "paused" if job.paused_at is not None else "running")
        if job.fine_tuned_model is None:
            finished = start + t.train
            suffix = job.body.get("suffix") or ""
            job.fine_tuned_model = f"ft:{job.body['model']}:{ORGANIZATION}:{suffix}:{job.id[-8:]}"
            self.models[job.fine_tuned_model] = {"id": job.fine_tuned_model, "object": "model",
                                                 "created": int(finished), "owned_by": ORGANIZATION}  # fmt: skip
            job.result_file = self.new_id("file-", job.id)
            csv = "step,train_loss\n" + "".join(
                f"{e['data']['step']},{e['data']['train_loss']}\n" for e in job.events if e["type"] == "metrics"
            )
            self.contents[job.result_file] = csv.encode()
            self.files[job.result_file] = {"id": job.result_file, "object": "file", "bytes": len(csv),
                                           "created_at": int(finished), "filename": "step_metrics.csv",
                                           "purpose": "fine-tune-results", "status": "processed"}  # fmt: skip
            self._emit(job, finished, "info", f"New fine-tuned model created: {job.fine_tuned_model}")
            self._emit(job, finished, "info", "The job has successfully completed")
        return "succeeded"

    def _final(self, job: SandboxJob, status: str) -> str:
        if job.cancelled_at is not None:
            self._emit(job, job.cancelled_at, "info", "Fine-tuning job cancelled")
            return "cancelled"
        return status

    def epochs(self, job: SandboxJob) -> int:
        return job.n_epochs or default_epochs(job.examples)

    def batch(self, job: SandboxJob) -> int:
        return job.batch_size or max(1, min(256, round(job.examples * 0.002)))

    def total_steps(self, job: SandboxJob) -> int:
        return max(1, math.ceil(job.examples / self.batch(job)) * self.epochs(job))

    def _validate(self, job: SandboxJob) -> None:
        job.validated = True
        data = self.contents.get(job.body["training_file"], b"")
        encoding = tokens.get_encoding(tokens.encoding_name_for(job.body["model"]))
        examples, total = 0, 0
        for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                messages = row["messages"] if "messages" in row else [*row["input"]["messages"],
                                                                       *row["preferred_output"]]  # fmt: skip
                if not any(m["role"] == "assistant" for m in messages):
                    raise ValueError("no assistant message")
            except (ValueError, KeyError, TypeError) as e:
                job.error = {"code": "invalid_training_file", "param": "training_file", "message": (
                    f"The job failed due to an invalid training file. Invalid file format. Line {number}: {e}")}
                return
            examples += 1
            total += tokens.count_chat(messages, encoding)
        if examples < 10:
            job.error = {"code": "invalid_n_examples", "param": "training_file",
                         "message": f"Training file has {examples} example(s), but must have at least 10 examples"}
            return
        job.examples, job.tokens_per_epoch = examples, total

    def _emit(self, job: SandboxJob, at: float, level: str, message: str, *, type_: str = "message",
              data: dict[str, Any] | None = None) -> None:  # fmt: skip
        if any(e["message"] == message for e in job.events):
            return
        seq = len(job.events)
        job.events.append({"object": "fine_tuning.job.event", "id": f"ftevent-{job.id[-12:]}-{seq:05d}",
                           "created_at": int(at), "level": level, "message": message, "type": type_,
                           "data": data or {}})  # fmt: skip

    def _metrics(self, job: SandboxJob, step: int, steps: int, at: float) -> None:
        progress = step / steps
        wobble = int(hashlib.sha256(f"{job.id}:{step}".encode()).hexdigest()[:4], 16) / 65535 * 0.05
        loss = round(2.2 * math.exp(-3 * progress) + 0.12 + wobble, 4)
        accuracy = round(min(0.99, 0.45 + 0.5 * progress - wobble), 4)
        self._emit(job, at, "info", f"Step {step}/{steps}: training loss={loss}", type_="metrics",
                   data={"step": step, "total_steps": steps, "train_loss": loss, "train_mean_token_accuracy": accuracy})

    def _checkpoint(self, job: SandboxJob, step: int, at: float) -> None:
        if any(c["step_number"] == step for c in job.checkpoints):
            return
        metrics = next(
            (e["data"] for e in reversed(job.events) if e["type"] == "metrics" and e["data"]["step"] <= step), {}
        )
        job.checkpoints.append({
            "object": "fine_tuning.job.checkpoint", "id": f"ftckpt-{job.id[-12:]}-{step}", "created_at": int(at),
            "fine_tuned_model_checkpoint": f"ft:{job.body['model']}:{ORGANIZATION}:{job.body.get('suffix') or ''}:"
                                           f"{job.id[-8:]}:ckpt-step-{step}",
            "fine_tuning_job_id": job.id, "step_number": step,
            "metrics": {"step": step, "train_loss": metrics.get("train_loss")},
        })  # fmt: skip

    def job_object(self, job: SandboxJob) -> dict[str, Any]:
        status = self.advance(job, self.clock())
        method = job.body.get("method") or {"type": "supervised"}
        hyper = {"n_epochs": self.epochs(job) if job.validated else "auto",
                 "batch_size": self.batch(job) if job.validated else "auto",
                 "learning_rate_multiplier": (job.body.get("_hyper") or {}).get("learning_rate_multiplier") or 1.8}
        finished = job.created + self.timing.validate + self.timing.queue + self.timing.train + job.paused_for
        return {
            "object": "fine_tuning.job", "id": job.id, "model": job.body["model"], "created_at": int(job.created),
            "finished_at": int(finished) if status == "succeeded" else None,
            "fine_tuned_model": job.fine_tuned_model if status == "succeeded" else None,
            "organization_id": ORGANIZATION, "result_files": [job.result_file] if status == "succeeded" else [],
            "status": status, "validation_file": job.body.get("validation_file"),
            "training_file": job.body["training_file"], "hyperparameters": hyper,
            "trained_tokens": job.tokens_per_epoch * self.epochs(job) if status == "succeeded" else None,
            "error": job.error if status == "failed" else None, "seed": job.body.get("seed") or 42,
            "estimated_finish": int(finished) if status in ("queued", "running") else None,
            "metadata": job.body.get("metadata"), "suffix": job.body.get("suffix"),
            "method": {"type": method.get("type", "supervised"),
                       method.get("type", "supervised"): {"hyperparameters": hyper}},
        }  # fmt: skip


def _page(items: list[dict[str, Any]], after: str | None, limit: int) -> dict[str, Any]:
    if after is not None:
        ids = [i["id"] for i in items]
        items = items[ids.index(after) + 1:] if after in ids else []
    return {"object": "list", "data": items[:limit], "has_more": len(items) > limit}


def _router(state: SandboxState) -> APIRouter:
    r = APIRouter()

    @r.post("/files")
    async def upload(file: Annotated[UploadFile, File()], purpose: Annotated[str, Form()]) -> Any:
        if purpose not in ("fine-tune", "batch", "assistants", "vision", "user_data", "evals"):
            return _error(400, f"Invalid purpose {purpose!r}.", param="purpose")
        data = await file.read()
        with state.lock:
            fid = state.new_id("file-", file.filename or "upload")
            state.contents[fid] = data
            state.files[fid] = {"id": fid, "object": "file", "bytes": len(data), "created_at": int(state.clock()),
                                "filename": file.filename, "purpose": purpose, "status": "processed"}  # fmt: skip
            return state.files[fid]

    @r.get("/files/{file_id}")
    def get_file(file_id: str) -> Any:
        return state.files.get(file_id) or _error(404, f"No such File object: {file_id}", param="id")

    @r.get("/files/{file_id}/content")
    def file_content(file_id: str) -> Any:
        if file_id not in state.contents:
            return _error(404, f"No such File object: {file_id}", param="id")
        return Response(state.contents[file_id], media_type="application/octet-stream")

    @r.post("/fine_tuning/jobs")
    async def create_job(request: Request) -> Any:
        body = await request.json()
        with state.lock:
            if state.refuse_training:
                return _error(403, "Fine-tuning is not available for this organization: new fine-tuning jobs "
                              "can no longer be created.", code="training_not_available")  # fmt: skip
            model = body.get("model")
            if model not in FINE_TUNABLE:
                return _error(400, f"Model {model} is not available for fine-tuning or does not exist.",
                              code="model_not_available", param="model")  # fmt: skip
            for key in ("training_file", "validation_file"):
                fid = body.get(key)
                if key == "training_file" or fid is not None:
                    f = state.files.get(fid or "")
                    if f is None or f["purpose"] != "fine-tune":
                        return _error(400, f"invalid {key}: {fid}", code=f"invalid_{key}", param=key)
            method = body.get("method") or {"type": "supervised"}
            hyper = ((method.get(method.get("type", "supervised")) or {}).get("hyperparameters")
                     or body.get("hyperparameters") or {})  # fmt: skip
            job_id = state.new_id("ftjob-", model)
            job = SandboxJob(job_id, state.clock(), {**body, "_hyper": hyper})
            job.n_epochs = hyper.get("n_epochs") if isinstance(hyper.get("n_epochs"), int) else None
            job.batch_size = hyper.get("batch_size") if isinstance(hyper.get("batch_size"), int) else None
            state.jobs[job_id] = job
            return state.job_object(job)

    @r.get("/fine_tuning/jobs")
    def list_jobs(request: Request, after: str | None = None, limit: int = 20) -> Any:
        wanted = {k[len("metadata["):-1]: v for k, v in request.query_params.items() if k.startswith("metadata[")}
        with state.lock:
            jobs = [state.job_object(j) for j in sorted(state.jobs.values(), key=lambda j: -j.created)]
        jobs = [j for j in jobs if all((j["metadata"] or {}).get(k) == v for k, v in wanted.items())]
        return _page(jobs, after, limit)

    def on_job(job_id: str, action: Callable[[SandboxJob, str], Any]) -> Any:
        """Runs `action(job, status now)` under the lock, or answers OpenAI's 404."""
        with state.lock:
            job = state.jobs.get(job_id)
            if job is None:
                return _error(404, f"Could not find job {job_id!r}.", code="not_found", param="fine_tuning_job_id")
            return action(job, state.advance(job, state.clock()))

    def cancel_job(job: SandboxJob, status: str) -> Any:
        if status in ("succeeded", "failed", "cancelled"):
            return _error(400, f"Job {job.id} has already {status}; it cannot be cancelled.", param="job_id")
        job.cancelled_at = state.clock()
        return state.job_object(job)

    def pause_job(job: SandboxJob, status: str) -> Any:
        if status != "running":
            return _error(400, f"Job {job.id} is not running; only a running job can be paused.")
        job.paused_at = state.clock()
        return state.job_object(job)

    def resume_job(job: SandboxJob, status: str) -> Any:
        if job.paused_at is None:
            return _error(400, f"Job {job.id} is not paused.")
        job.paused_for += state.clock() - job.paused_at
        job.paused_at = None
        return state.job_object(job)

    @r.get("/fine_tuning/jobs/{job_id}")
    def retrieve(job_id: str) -> Any:
        return on_job(job_id, lambda job, _: state.job_object(job))

    @r.get("/fine_tuning/jobs/{job_id}/events")
    def events(job_id: str, after: str | None = None, limit: int = 20) -> Any:
        # newest first, as OpenAI lists them
        return on_job(job_id, lambda job, _: _page(list(reversed(job.events)), after, limit))

    @r.get("/fine_tuning/jobs/{job_id}/checkpoints")
    def checkpoints(job_id: str, after: str | None = None, limit: int = 10) -> Any:
        return on_job(job_id, lambda job, _: _page(list(reversed(job.checkpoints)), after, limit))

    @r.post("/fine_tuning/jobs/{job_id}/cancel")
    def cancel(job_id: str) -> Any:
        return on_job(job_id, cancel_job)

    @r.post("/fine_tuning/jobs/{job_id}/pause")
    def pause(job_id: str) -> Any:
        return on_job(job_id, pause_job)

    @r.post("/fine_tuning/jobs/{job_id}/resume")
    def resume(job_id: str) -> Any:
        return on_job(job_id, resume_job)

    @r.get("/models")
    def models() -> Any:
        base = [{"id": m, "object": "model", "created": 1_700_000_000, "owned_by": "system"} for m in FINE_TUNABLE]
        return {"object": "list", "data": base + list(state.models.values())}

    @r.delete("/models/{model:path}")
    def delete_model(model: str) -> Any:
        with state.lock:
            if model not in state.models:
                return _error(404, f"The model '{model}' does not exist", code="model_not_found", param="model")
            del state.models[model]
            return {"id": model, "object": "model", "deleted": True}

    return r


class AuthAndFaults:
    """Checks the key and serves queued faults before a request reaches the API. A plain ASGI middleware, so
    a streamed answer passes through untouched, and a stream that breaks breaks the connection too."""

    def __init__(self, app: Any, state: SandboxState) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not scope["path"].startswith("/_sandbox"):
            refused = self.refusal(Request(scope))
            if refused is not None:
                return await refused(scope, receive, send)
        await self.app(scope, receive, send)

    def refusal(self, request: Request) -> JSONResponse | None:
        state, path = self.state, request.url.path
        key = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        key = key or request.headers.get("api-key", "")
        if not key:
            return _error(401, "You didn't provide an API key.", type_="invalid_request_error")
        if state.valid_keys is not None and key not in state.valid_keys:
            shown = f"{key[:6]}{'*' * max(0, len(key) - 10)}{key[-4:]}"
            return _error(401, f"Incorrect API key provided: {shown}. You can find your API key at "
                          "https://platform.openai.com/account/api-keys.", code="invalid_api_key")  # fmt: skip
        with state.lock:
            state.requests.append((request.method, path))
            fault = state.take_fault(request.method, path)
        if fault is None:
            return None
        return _error(fault.status, f"Sandbox fault: {fault.status}", code=fault.code,
                      type_="requests" if fault.status == 429 else "server_error",
                      headers={"retry-after-ms": "20"} if fault.retry_after is None
                      else {"retry-after": f"{fault.retry_after:g}"})  # fmt: skip


def create_sandbox_app(state: SandboxState | None = None) -> FastAPI:
    state = state or SandboxState()
    app = FastAPI(title="ft-lifecycle OpenAI fine-tuning sandbox", docs_url=None, redoc_url=None)
    app.state.sandbox = state

    app.add_middleware(AuthAndFaults, state=state)

    @app.post("/_sandbox/faults")
    async def add_fault(request: Request) -> Any:
        """Queues a fault: {"status": 429, "times": 1, "method": "GET", "path": "/fine_tuning/jobs/...",
        "retry_after": 1}."""
        body = await request.json()
        with state.lock:
            state.faults.append(Fault(int(body["status"]), body.get("method"), body.get("path"),
                                      int(body.get("times", 1)), body.get("code"),
                                      body.get("retry_after")))  # fmt: skip
        return {"queued": len(state.faults)}

    @app.post("/_sandbox/settings")
    async def settings(request: Request) -> Any:
        body = await request.json()
        with state.lock:
            if "refuse_training" in body:
                state.refuse_training = bool(body["refuse_training"])
            return {"refuse_training": state.refuse_training}

    @app.post("/_sandbox/chat")
    async def chat_settings(request: Request) -> Any:
        """How model calls answer: {"answers": {prompt: answer}, "delay": s, "chunk_interval": s,
        "drop_after_chunks": n}."""
        body = await request.json()
        with state.lock:
            for name in ("answers", "delay", "chunk_interval", "drop_after_chunks"):
                if name in body:
                    setattr(state.chat, name, body[name])
            return {"requests": state.chat.requests}

    chat = chat_router(state.chat, lock=state.lock, new_id=state.new_id, clock=state.clock)
    for prefix in ("/v1", "/openai"):  # OpenAI's layout and Azure OpenAI's
        app.include_router(_router(state), prefix=prefix)
        app.include_router(chat, prefix=prefix)
    app.include_router(chat, prefix="/openai/v1")  # Azure OpenAI's v1 API: OpenAI's paths under /openai/v1
    return app
