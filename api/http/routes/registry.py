"""/v1/registry/export: the whole registry in the seed's JSON shape."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.http.deps import ReaderDep, read
from api.http.responses import READ
from projections.registry import export_registry

router = APIRouter(prefix="/v1/registry", tags=["registry"], responses=READ)


@router.get("/export")
async def export(runtime: ReaderDep) -> dict[str, list[dict[str, Any]]]:
    """A model name mapped to its versions: version, model_name, base_model, job_id, dataset_size,
    accuracy, cost (a decimal string), status, registered_at, deployed_at."""
    return await read(export_registry, runtime.db)
