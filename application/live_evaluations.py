"""Live evaluation: a dataset's test split sent to a model behind any OpenAI-compatible endpoint.

Each example's prompt (its messages up to the last answer) goes to the endpoint through a chat
client the wiring injects (adapters/chat_endpoint.py: the official `openai` SDK, for OpenAI, Azure,
Ollama's /v1, vLLM), at most `concurrency` at a time; the SDK retries 429s, 5xx and dropped
connections with backoff. Predictions are recorded in small batches as they
arrive, with latency, tokens and cost from the price catalog, so a run that is stopped keeps
what it had: a rerun skips the examples already predicted and completes the evaluation, whose
metrics are then computed over every prediction.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from application.evaluations import Evaluations
from application.ledger import CostLedger
from domain import evaluation_metrics as metrics_
from domain.datasets import chat_messages
from domain.errors import InvalidInput, RuleViolation
from domain.evaluations import EvaluationSpec, compute_metrics, evaluation_stream_id
from domain.pricing import PER_MILLION
from projections.database import Database
from projections.datasets import member_examples
from projections.evaluations import predictions as recorded_predictions

BATCH = 16


@dataclass(frozen=True)
class ChatReply:
    content: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class EndpointFailed(Exception):
    """The endpoint did not answer (after the client's own retries); the message holds no key."""


class ChatClient(Protocol):
    def complete(self, model: str, messages: list[dict[str, str]]) -> ChatReply:
        """One chat completion; raises EndpointFailed."""
        ...


#: a chat client for an endpoint's base URL and its own key (sent there and nowhere else)
ChatConnector = Callable[[str, str | None], ChatClient]


@dataclass(frozen=True)
class LiveRun:
    evaluation_id: str
    total: int
    predicted_before: int
    predicted_now: int
    metrics: dict[str, Any] | None


def _prompt_and_reference(example: dict[str, Any]) -> tuple[list[dict[str, str]], str]:
    messages = chat_messages(example)
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    return messages[:last], messages[last]["content"]


@dataclass
class LiveEvaluations:
    evaluations: Evaluations
    ledger: CostLedger
    db: Database
    connect: ChatConnector
    #: the dataset's record, or NotFound with the fix
    dataset: Callable[[str], dict[str, Any]]
    #: brings the read models to the log's head / to a position (read-your-writes)
    current: Callable[[], None]
    reach: Callable[[int], None]

    def run(self, *, model: str, endpoint: str, dataset_id: str, split: str = "test", api_key: str | None = None,
            concurrency: int = 4, evaluation_id: str, model_type: str = "fine_tuned", modes: list[str] | None = None,
            actor: str, progress: Callable[[int, int], None] | None = None,
            endpoint_name: str | None = None) -> LiveRun:  # fmt: skip
        """`endpoint` is the URL the caller chose (over HTTP: a configured endpoint's, named `endpoint_name`) and
        `api_key` that endpoint's own key: it is sent there and nowhere else, and never recorded or shown."""
        if not 1 <= concurrency <= 256:
            raise InvalidInput(f"concurrency must be from 1 to 256, got {concurrency}.")
        self.current()
        self.dataset(dataset_id)  # a clear 404 first
        examples = member_examples(self.db, dataset_id, split)
        if not examples:
            raise InvalidInput(f"Dataset {dataset_id!r} has no {split} examples to evaluate on.")
        source = {"kind": "live", "endpoint": endpoint, "dataset_id": dataset_id, "split": split}
        spec = EvaluationSpec.validate(evaluation_id=evaluation_id, model=model, model_type=model_type,
                                       modes=modes or ["exact"],
                                       source=source | ({"endpoint_name": endpoint_name} if endpoint_name else {}))
        existing = self.evaluations.load(evaluation_id) if self._exists(evaluation_id) else None
        if existing is None:
            self.evaluations.start(spec, actor=actor)
        elif existing.status != "running":
            raise RuleViolation(f"Evaluation {evaluation_id!r} is already {existing.status}: start a new one.")
        self.current()
        done = {p["example_id"] for p in recorded_predictions(self.db, evaluation_id)}
        todo = [e for e in examples if e["example_id"] not in done]
        price = self.ledger.price_for(model, datetime.now(UTC))
        client = self.connect(endpoint, api_key)
        lock, pending, predicted = threading.Lock(), [], 0

        def ask(example: dict[str, Any]) -> dict[str, Any]:
            prompt, reference = _prompt_and_reference(example)
            started = time.perf_counter()
            reply = client.complete(model, prompt)
            latency = (time.perf_counter() - started) * 1000
            cost = None
            if (price is not None and reply.prompt_tokens is not None and reply.completion_tokens is not None
                    and price.input_per_1m is not None and price.output_per_1m):  # fmt: skip
                cost = (Decimal(reply.prompt_tokens) * price.input_per_1m
                        + Decimal(reply.completion_tokens) * price.output_per_1m) / PER_MILLION  # fmt: skip
            return {"example_id": example["example_id"], "prediction": reply.content, "reference": reference,
                    "label": None, "latency_ms": round(latency, 3), "cost": cost,
                    "input_tokens": reply.prompt_tokens, "output_tokens": reply.completion_tokens}  # fmt: skip

        def flush(force: bool = False) -> None:
            nonlocal pending
            with lock:
                if not pending or (len(pending) < BATCH and not force):
                    return
                batch, pending = pending, []
            self.evaluations.record_predictions(evaluation_id, batch, actor=actor)

        failure: EndpointFailed | None = None
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            queue = iter(todo)
            running: set[Future[dict[str, Any]]] = set()
            for example in queue:
                running.add(pool.submit(ask, example))
                if len(running) >= concurrency:
                    break
            while running:
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    try:
                        row = future.result()
                    except EndpointFailed as e:
                        failure = failure or e
                        continue
                    with lock:
                        pending.append(row)
                    predicted += 1
                    if progress is not None:
                        progress(len(done) + predicted, len(examples))
                flush()
                if failure is None:
                    for example in queue:
                        running.add(pool.submit(ask, example))
                        if len(running) >= concurrency:
                            break
        flush(force=True)
        if failure is not None:
            raise RuleViolation(
                f"The endpoint {endpoint} failed ({failure}); {len(done) + predicted} of {len(examples)} predictions "
                "are recorded. Run the same command again to resume: it skips the examples already predicted."
            )
        self.current()
        rows = sorted(recorded_predictions(self.db, evaluation_id), key=lambda r: r["example_id"])
        result = compute_metrics(rows, spec.modes, metrics_.Normalisation(**spec.normalisation))
        completed = self.evaluations.complete(evaluation_id, result, actor=actor)
        self.reach(completed.position)
        return LiveRun(evaluation_id, len(examples), len(done), predicted, result)

    def _exists(self, evaluation_id: str) -> bool:
        return evaluation_stream_id(evaluation_id) in self.evaluations.repository
