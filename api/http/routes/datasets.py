"""/v1/datasets: build training sets from collected examples, with their lineage, statistics and files."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response, status

from api.http.deps import CommandDep, ReaderDep, decode_cursor, encode_cursor, read
from api.http.responses import COMMAND, READ, errors
from api.http.schemas.common import Name
from api.http.schemas.datasets import DatasetDetailOut, DatasetIn, DatasetPage
from domain.values import stored_time
from projections.datasets import list_datasets

router = APIRouter(prefix="/v1/datasets", tags=["datasets"], responses=READ)
DatasetId = Annotated[Name, Path(description="The dataset's id")]
ERRORS = errors(404, 409)
MEDIA = {"openai": "application/jsonl", "jsonl": "application/jsonl", "alpaca": "application/json"}
FILE = {200: {"description": "The file: JSON Lines, or (alpaca) a JSON array", "content": {
    "application/jsonl": {"schema": {"type": "string"}},
    "application/json": {"schema": {"type": "array"}}}}}  # fmt: skip


@router.post("", status_code=status.HTTP_201_CREATED, response_model=DatasetDetailOut, responses=COMMAND | ERRORS)
async def build(body: DatasetIn, cmd: CommandDep) -> DatasetDetailOut:
    """Filters the collected examples, validates them (seed rules, chat format, token limit), removes
    duplicates, splits train/test deterministically from the ratio and seed, and records the build:
    its filters, every included and rejected example, and the content hash."""
    settings = body.model_dump(exclude={"reason", "since", "until"}) | {
        "since": stored_time("since", body.since), "until": stored_time("until", body.until)
    }  # fmt: skip
    built = await cmd.run(lambda: cmd.runtime.builds.build(actor=cmd.actor, reason=body.reason, **settings))
    return DatasetDetailOut(**await read(cmd.runtime.builds.get, built.build.dataset_id))


@router.get("", response_model=DatasetPage)
async def get_datasets(
    runtime: ReaderDep, cursor: Annotated[str | None, Query()] = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> DatasetPage:
    items = await read(list_datasets, runtime.db, after=decode_cursor(cursor, str), limit=limit)
    next_cursor = encode_cursor(items[-1]["dataset_id"]) if len(items) == limit else None
    return DatasetPage(items=items, next_cursor=next_cursor)


@router.get("/{dataset_id}", response_model=DatasetDetailOut, responses=ERRORS)
async def get_dataset(dataset_id: DatasetId, runtime: ReaderDep) -> DatasetDetailOut:
    return DatasetDetailOut(**await read(runtime.builds.get, dataset_id))


@router.get("/{dataset_id}/stats", responses=ERRORS)
async def get_stats(dataset_id: DatasetId, runtime: ReaderDep) -> dict:
    """Counts by domain, task type, rating and source; character and token lengths; total tokens;
    the estimated training cost per fine-tunable model in the catalog; warnings."""
    return (await read(runtime.builds.get, dataset_id))["stats"]


@router.get("/{dataset_id}/export", responses=ERRORS | FILE, response_class=Response)
async def export(
    dataset_id: DatasetId,
    runtime: ReaderDep,
    format: Annotated[Literal["openai", "alpaca", "jsonl"], Query(description="File format")] = "openai",  # noqa: A002
    split: Annotated[Literal["train", "test", "all"], Query()] = "train",
) -> Response:
    """The dataset as a file: OpenAI chat JSONL, Alpaca JSON or raw JSONL. A rebuild gives the same bytes."""
    data = await read(runtime.builds.export, dataset_id, format, split)
    suffix = "json" if format == "alpaca" else "jsonl"
    return Response(
        data, media_type=MEDIA[format],
        headers={"Content-Disposition": f'attachment; filename="{dataset_id}-{split}.{suffix}"'},
    )  # fmt: skip
