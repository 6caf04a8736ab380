"""OpenAI fine-tuning through the official `openai` SDK (which sends through httpx2).

The same API is served by OpenAI, Azure OpenAI and OpenAI-compatible providers,
so the client is built from settings (api/settings.py reads them: OPENAI_API_KEY,
OPENAI_BASE_URL and OPENAI_ORG_ID, or Azure's AZURE_OPENAI_ENDPOINT,
AZURE_OPENAI_API_KEY and OPENAI_API_VERSION). The key lives only in the client: it is never part of a
reading, an error message or a `repr`.

It implements the training-provider port (domain/training_provider.py). Provider errors
become `ProviderError` with a kind the callers act on:
`transient` (429, 5xx, network: keep the job and retry later), `refused`
(403 training_not_available), `auth`, `rejected` (400) and `not_found`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import openai

from domain.errors import InvalidInput, RuleViolation
from domain.job_specs import JOB_METADATA_KEY, JobSpec, ProviderJob
from domain.jobs import FineTuningJob
from domain.shipped_prices import FINE_TUNABLE_SNAPSHOTS
from domain.training_provider import JobData, ProviderError, UploadRecorder

#: OpenAI's own API (the SDK's default base URL), where base model names are checked before a job is recorded
OPENAI_URL = "https://api.openai.com/v1"

#: OpenAI's wording of the 2026 wind-down of self-serve fine-tuning, in plain words for users
REFUSAL_HELP = (
    "The provider refused to start fine-tuning ({code}): OpenAI is winding down self-serve fine-tuning, and "
    "refuses new jobs to most organisations (to everyone from 6 January 2027). Nothing was trained or billed, "
    "and the job is kept as refused. To go on, point OPENAI_BASE_URL at an OpenAI-compatible provider, or set "
    "AZURE_OPENAI_ENDPOINT for Azure OpenAI, and create the job again; or run `ft-cli sandbox openai` to try "
    "the lifecycle locally. Provider said: {message}"
)


#: key-like tokens in provider messages: OpenAI's 401 quotes part of the key ("Incorrect API key provided: sk-...")
_KEY_LIKE = re.compile(r"\b(sk|sess|key)-[\w*.-]{4,}")


def scrub(text: str, secret: str | None = None) -> str:
    """A provider's message without the key or any part of one, before it is shown, logged or stored."""
    if secret:
        text = text.replace(secret, "[key hidden]")
    return _KEY_LIKE.sub("[key hidden]", text)


@dataclass(frozen=True)
class OpenAISettings:
    api_key: str | None = field(default=None, repr=False)
    base_url: str | None = None
    organization: str | None = None
    azure_endpoint: str | None = None
    api_version: str | None = None
    timeout: float = 60.0
    max_retries: int = 2

    @property
    def configured(self) -> bool:
        return bool(self.api_key)

    def describe(self) -> str:
        """Where requests go, without the key."""
        if self.azure_endpoint:
            return f"Azure OpenAI at {self.azure_endpoint} (api-version {self.api_version})"
        return f"{self.base_url or OPENAI_URL}"

    @property
    def is_openai(self) -> bool:
        """OpenAI's own API, not Azure or a compatible provider at another base URL."""
        return not self.azure_endpoint and (self.base_url or OPENAI_URL).rstrip("/") == OPENAI_URL

    @staticmethod
    def missing_key_message() -> str:
        return (
            "No provider key is configured: set OPENAI_API_KEY (or AZURE_OPENAI_ENDPOINT and "
            "AZURE_OPENAI_API_KEY for Azure). To try the lifecycle without an account, run "
            "`ft-cli sandbox openai` and set OPENAI_BASE_URL and OPENAI_API_KEY as it prints, or run `ft-cli demo`."
        )

    def client(self) -> openai.OpenAI:
        if not self.api_key:
            raise ProviderError("auth", self.missing_key_message())
        if self.azure_endpoint:
            if not self.api_version:
                raise ProviderError("auth", "Azure OpenAI needs OPENAI_API_VERSION (for example 2025-04-01-preview).")
            return openai.AzureOpenAI(
                azure_endpoint=self.azure_endpoint, api_key=self.api_key, api_version=self.api_version,
                timeout=self.timeout, max_retries=self.max_retries,
            )  # fmt: skip
        return openai.OpenAI(
            api_key=self.api_key, base_url=self.base_url, organization=self.organization,
            timeout=self.timeout, max_retries=self.max_retries,
        )  # fmt: skip


@contextmanager
def _translating(what: str, secret: str | None = None) -> Iterator[None]:
    try:
        yield
    except openai.APITimeoutError:
        raise ProviderError("transient", f"{what}: the provider did not answer in time; it will be retried.") from None
    except openai.APIConnectionError:
        raise ProviderError("transient", f"{what}: the provider cannot be reached; it will be retried.") from None
    except openai.APIStatusError as e:
        status, code = e.status_code, getattr(e, "code", None)
        message = scrub(_provider_message(e), secret)
        if status == 429 or status >= 500 or status == 408:
            raise ProviderError("transient", f"{what}: the provider answered {status} ({message}); it will be "
                                "retried.", status=status, code=code) from None  # fmt: skip
        if status == 403 and code == "training_not_available":
            raise ProviderError("refused", REFUSAL_HELP.format(code=code, message=message), status=status,
                                code=code) from None  # fmt: skip
        if status in (401, 403):
            raise ProviderError("auth", f"{what}: the provider refused the credentials ({status}: {message}). "
                                "Check OPENAI_API_KEY and OPENAI_ORG_ID.", status=status,
                                code=code) from None  # fmt: skip
        if status == 404:
            raise ProviderError("not_found", f"{what}: {message}", status=status, code=code) from None
        raise ProviderError("rejected", f"{what}: the provider rejected the request ({status}: {message}).",
                            status=status, code=code) from None  # fmt: skip


def _provider_message(e: openai.APIStatusError) -> str:
    body = e.body if isinstance(e.body, dict) else {}
    return str(body.get("message") or e.message)


def _event(e: Any) -> dict[str, Any]:
    return {"id": e.id, "created_at": e.created_at, "level": e.level, "message": e.message,
            "type": getattr(e, "type", None), "data": getattr(e, "data", None)}  # fmt: skip


class OpenAIFineTuning:
    """The training-provider port for OpenAI's fine-tuning API (and Azure's, and compatible providers')."""

    name = "openai"
    minimum_examples_apply = True

    def __init__(self, settings: OpenAISettings | None = None) -> None:
        self.settings = settings or OpenAISettings()
        self._client: openai.OpenAI | None = None

    def _translated(self, what: str) -> Any:
        return _translating(what, self.settings.api_key)

    @property
    def client(self) -> openai.OpenAI:
        if self._client is None:
            self._client = self.settings.client()
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # ------------------------------------------------------------------ the port

    def describe(self) -> str:
        return self.settings.describe()

    def check_base_model(self, base_model: str) -> None:
        """OpenAI itself takes only its dated snapshots (and `ft:` models, to train further): other names are
        refused before anything is recorded. Azure and compatible providers have their own names: they decide."""
        if not self.settings.is_openai or base_model.startswith("ft:") or base_model in FINE_TUNABLE_SNAPSHOTS:
            return
        dated = re.compile(re.escape(base_model) + r"-\d{4}(-\d\d-\d\d)?")  # gpt-4o-mini -> gpt-4o-mini-2024-07-18
        dated = [s for s in FINE_TUNABLE_SNAPSHOTS if re.fullmatch(dated, s)]
        use = f"use {dated[0]}" if dated else "use one of " + ", ".join(FINE_TUNABLE_SNAPSHOTS)
        raise InvalidInput(f"{base_model} is not a fine-tunable snapshot at OpenAI: {use} (or an ft: model to "
                           "train it further).")

    def check_runnable(self, spec: JobSpec) -> None:
        """Any job that passed the spec's rules can be sent; the provider checks the rest."""

    def check_ready(self) -> None:
        if not self.settings.configured:
            raise RuleViolation(self.settings.missing_key_message())

    def submit(self, job: FineTuningJob, data: JobData, record_upload: UploadRecorder) -> ProviderJob:
        files = dict(job.files)
        for role, source in (("training", job.training), ("validation", job.validation)):
            if source is None or role in files:
                continue
            content = data(role)
            name = f"{job.job_id}-{role}.jsonl"
            uploaded = self.upload(name, content)
            record_upload({"role": role, "id": uploaded["id"], "name": name, "size": len(content)})
            files[role] = uploaded["id"]
        # A create whose reply was lost left a job at the provider: find it before creating another.
        return self.find_job(job.job_id) or self.create_job(
            job_id=job.job_id, model=job.base_model, training_file=files["training"],
            validation_file=files.get("validation"), suffix=job.suffix, seed=job.seed, metadata=job.metadata,
            method=job.method, hyperparameters=job.hyperparameters,
        )  # fmt: skip

    def read(self, job: FineTuningJob) -> ProviderJob:
        return self.retrieve(job.provider_job_id or "", job.seen_events)

    def cancel(self, job: FineTuningJob) -> ProviderJob:
        try:
            self.cancel_job(job.provider_job_id or "")
        except ProviderError as e:
            if e.kind != "rejected":  # rejected: it finished meanwhile, and the reading says how
                raise
        return self.read(job)

    def run_facts(self, job: FineTuningJob) -> dict[str, Any]:
        return {}  # the provider reports what it trained in the job's reading

    def serving_target(self, job: FineTuningJob) -> dict[str, str] | None:
        """The provider serves what it trained: through the `openai` upstream (OPENAI_BASE_URL and its key).
        Azure serves a fine-tune only once it is deployed there, under a deployment name of its own."""
        if self.settings.azure_endpoint or not job.fine_tuned_model:
            return None
        return {"upstream": "openai", "model": job.fine_tuned_model}

    def parameter_count(self, base_model: str) -> int | None:
        return None  # hosted models do not say

    # ------------------------------------------------------------------- files

    def upload(self, filename: str, data: bytes) -> dict[str, Any]:
        with self._translated(f"Uploading {filename}"):
            f = self.client.files.create(file=(filename, data, "application/jsonl"), purpose="fine-tune")
        return {"id": f.id, "filename": f.filename, "bytes": f.bytes, "status": f.status}

    # -------------------------------------------------------------------- jobs

    def create_job(
        self, *, job_id: str, model: str, training_file: str, validation_file: str | None, suffix: str | None,
        seed: int | None, metadata: dict[str, str], method: str, hyperparameters: dict[str, Any],
    ) -> ProviderJob:  # fmt: skip
        params = {k: v for k, v in hyperparameters.items() if v is not None}
        params = {k: (float(v) if k in ("learning_rate_multiplier", "beta") else v) for k, v in params.items()}
        body: dict[str, Any] = {"model": model, "training_file": training_file,
                                "metadata": {**metadata, JOB_METADATA_KEY: job_id},
                                "method": {"type": method, method: {"hyperparameters": params}}}  # fmt: skip
        for key, value in (("validation_file", validation_file), ("suffix", suffix), ("seed", seed)):
            if value is not None:
                body[key] = value
        with self._translated("Creating the fine-tuning job"):
            job = self.client.fine_tuning.jobs.create(**body)
        return self._reading(job, [])

    def find_job(self, job_id: str) -> ProviderJob | None:
        """The provider's job created for our `job_id` (a lost reply to create), if any."""
        with self._translated("Looking up the job at the provider"):
            page = self.client.fine_tuning.jobs.list(metadata={JOB_METADATA_KEY: job_id}, limit=10)
        found = [j for j in page.data if (j.metadata or {}).get(JOB_METADATA_KEY) == job_id]
        return self._reading(found[0], []) if found else None

    def retrieve(self, provider_job_id: str, seen: set[str] | frozenset[str] = frozenset()) -> ProviderJob:
        """The job now, with the events not in `seen` (oldest first)."""
        with self._translated(f"Reading job {provider_job_id}"):
            job = self.client.fine_tuning.jobs.retrieve(provider_job_id)
            fresh = []
            # Events come newest first; stop at the first one already recorded.
            for e in self.client.fine_tuning.jobs.list_events(provider_job_id, limit=100):
                if e.id in seen:
                    break
                fresh.append(_event(e))
        return self._reading(job, list(reversed(fresh)))

    def cancel_job(self, provider_job_id: str) -> None:
        with self._translated(f"Cancelling job {provider_job_id}"):
            self.client.fine_tuning.jobs.cancel(provider_job_id)

    def pause(self, provider_job_id: str) -> None:
        with self._translated(f"Pausing job {provider_job_id}"):
            self.client.fine_tuning.jobs.pause(provider_job_id)

    def resume(self, provider_job_id: str) -> None:
        with self._translated(f"Resuming job {provider_job_id}"):
            self.client.fine_tuning.jobs.resume(provider_job_id)

    def list_jobs(self, *, after: str | None = None, limit: int = 20) -> tuple[list[dict[str, Any]], bool]:
        with self._translated("Listing fine-tuning jobs"):
            page = self.client.fine_tuning.jobs.list(after=after or openai.omit, limit=limit)
        return [j.model_dump(mode="json") for j in page.data], bool(page.has_more)

    def checkpoints(self, provider_job_id: str) -> list[dict[str, Any]]:
        with self._translated(f"Listing checkpoints of {provider_job_id}"):
            return [c.model_dump(mode="json") for c in self.client.fine_tuning.jobs.checkpoints.list(provider_job_id)]

    def delete_model(self, model: str) -> None:
        with self._translated(f"Deleting {model}"):
            self.client.models.delete(model)

    @staticmethod
    def _reading(job: Any, events: list[dict[str, Any]]) -> ProviderJob:
        error = job.error.model_dump() if job.error is not None and job.error.code else None
        return ProviderJob(
            provider_job_id=job.id, status=job.status, fine_tuned_model=job.fine_tuned_model,
            trained_tokens=job.trained_tokens, finished_at=job.finished_at, error=error,
            estimated_finish=getattr(job, "estimated_finish", None), result_files=list(job.result_files or []),
            new_events=events,
        )  # fmt: skip
