"""/v1/evaluations: score a model's predictions, keep every prediction, compare two runs pairwise."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import uuid4

from fastapi import APIRouter, Path, Query, status

from api.http.deps import CommandDep, ReaderDep, SettingsDep, decode_cursor, encode_cursor, read
from api.http.responses import COMMAND, READ, errors
from api.http.schemas.common import Name
from api.http.schemas.evaluations import (
    AttachIn,
    CompareIn,
    EvaluationIn,
    EvaluationOut,
    EvaluationPage,
    PredictionPage,
)
from domain.errors import InvalidInput
from projections.evaluations import list_evaluations, predictions

router = APIRouter(prefix="/v1/evaluations", tags=["evaluations"], responses=READ)
EvaluationId = Annotated[Name, Path(description="The evaluation's id")]
ERRORS = errors(404, 409)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=EvaluationOut, responses=COMMAND | ERRORS)
async def evaluate(body: EvaluationIn, cmd: CommandDep,
                   settings: SettingsDep) -> EvaluationOut:  # fmt: skip
    """Offline evaluation: scores the given predictions in the chosen modes and records the evaluation,
    every prediction and the metrics (frozen in the completion event); every bad prediction is listed.
    Live run (`endpoint`, the name of an endpoint configured on the server, and `dataset_id`): sends the
    split to the model through the `openai` SDK with that endpoint's own key at the given concurrency,
    records every prediction with its latency, tokens and cost, and completes; posting the same
    `evaluation_id` again resumes a run that stopped. A URL is refused: the server never sends a key to an
    address a client chose."""
    if body.endpoint is not None or body.dataset_id is not None:
        if body.endpoint is None or body.dataset_id is None or body.predictions is not None:
            raise InvalidInput("A live run takes endpoint and dataset_id (and no predictions); an offline "
                               "evaluation takes predictions.")  # fmt: skip
        endpoint = settings.endpoint(body.endpoint, field="endpoint")  # a name, never a client's URL
        evaluation_id = body.evaluation_id or "live-" + uuid4().hex[:12]
        await cmd.run(lambda: cmd.runtime.live_evaluations.run(
            model=body.model, endpoint=endpoint.chat_url, dataset_id=body.dataset_id, split=body.split,
            api_key=endpoint.key, concurrency=body.concurrency, evaluation_id=evaluation_id,
            model_type=body.model_type, modes=body.modes, actor=cmd.actor, endpoint_name=body.endpoint,
        ))  # fmt: skip
        return EvaluationOut(**await read(cmd.runtime.evaluation_results.get, evaluation_id))
    if body.predictions is None:
        raise InvalidInput("Give predictions (an offline evaluation) or endpoint and dataset_id (a live run).")
    fields = body.model_dump(exclude={"reason", "endpoint", "dataset_id", "split", "concurrency"})
    results = cmd.runtime.evaluation_results
    done = await cmd.run(lambda: results.evaluate_offline(actor=cmd.actor, reason=body.reason, **fields))
    return EvaluationOut(**await read(cmd.runtime.evaluation_results.get, done.spec.evaluation_id))


@router.get("", response_model=EvaluationPage)
async def get_evaluations(
    runtime: ReaderDep, model: Annotated[Name | None, Query()] = None, cursor: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EvaluationPage:  # fmt: skip
    items = await read(list_evaluations, runtime.db, model=model, after=decode_cursor(cursor, str), limit=limit)
    next_cursor = encode_cursor(items[-1]["evaluation_id"]) if len(items) == limit else None
    return EvaluationPage(items=[EvaluationOut(**i) for i in items], next_cursor=next_cursor)


@router.get("/{evaluation_id}", response_model=EvaluationOut, responses=ERRORS)
async def get_evaluation(evaluation_id: EvaluationId, runtime: ReaderDep) -> EvaluationOut:
    return EvaluationOut(**await read(runtime.evaluation_results.get, evaluation_id))


@router.get("/{evaluation_id}/predictions", response_model=PredictionPage, responses=ERRORS)
async def get_predictions(
    evaluation_id: EvaluationId, runtime: ReaderDep, cursor: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> PredictionPage:  # fmt: skip
    await read(runtime.evaluation_results.get, evaluation_id)
    items = await read(predictions, runtime.db, evaluation_id, after=decode_cursor(cursor, str), limit=limit)
    next_cursor = encode_cursor(items[-1]["example_id"]) if len(items) == limit else None
    return PredictionPage(items=items, next_cursor=next_cursor)


@router.post("/compare", responses=COMMAND | ERRORS)
async def compare(body: CompareIn, cmd: CommandDep) -> dict[str, Any]:
    """Candidate against base on the same test set: accuracy with a paired 95% interval and McNemar's exact
    test on paired correctness, BLEU/ROUGE-L deltas, latency and cost deltas, and the ROI when a training
    cost and a call volume are given. Records nothing."""
    roi = None
    if body.training_cost is not None and body.calls is not None:
        roi = {"training_cost": body.training_cost, "calls": body.calls}
        if body.value_per_error is not None:
            roi["value_per_error"] = body.value_per_error
    return await read(cmd.runtime.evaluation_results.compare, body.base, body.candidate, roi=roi)


@router.post("/{evaluation_id}/attach", responses=COMMAND | ERRORS)
async def attach(evaluation_id: EvaluationId, body: AttachIn, cmd: CommandDep) -> dict[str, Any]:
    """Sets a registry version's accuracy from this evaluation, and links the evaluation, in one registry
    event (`VersionEvaluated`, in the audit trail)."""
    results = cmd.runtime.evaluation_results
    done = await cmd.run(lambda: results.attach(evaluation_id, body.model, body.version, actor=cmd.actor,
                                                reason=body.reason))  # fmt: skip
    return {"model": body.model, "version": body.version, "accuracy": done.accuracy, "evaluation_id": evaluation_id,
            "position": done.recorded.position}  # fmt: skip
