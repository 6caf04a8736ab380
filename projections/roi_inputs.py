"""ROI from the cost ledger: a model's training cost and costs per call, fed to the pure ROI functions."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from domain.errors import InvalidInput, RuleViolation
from domain.roi import RoiInputs, compute_roi
from projections.costs import model_costs
from projections.database import Database


def ledger_roi_inputs(
    db: Database, *, model: str | None, base_model: str | None, given: dict[str, Any]
) -> dict[str, Any]:
    """Fills training_cost and ft_cost_per_call from `model`'s ledger entry, and base_cost_per_call
    from `base_model`'s, wherever the caller did not give them; says which came from the ledger."""
    filled, sources = dict(given), {}
    if model is not None:
        costs = model_costs(db, model)
        if costs is None:
            raise RuleViolation(f"No costs are recorded for model {model!r}: record its training cost and inferences, "
                                "or give the figures explicitly.")  # fmt: skip
        if filled.get("training_cost") is None:
            filled["training_cost"], sources["training_cost"] = costs["training_cost"], f"ledger:{model}"
        if filled.get("ft_cost_per_call") is None:
            filled["ft_cost_per_call"], sources["ft_cost_per_call"] = _per_call(costs, model), f"ledger:{model}"
    if base_model is not None and filled.get("base_cost_per_call") is None:
        costs = model_costs(db, base_model)
        if costs is None:
            raise RuleViolation(f"No inference costs are recorded for base model {base_model!r}: "
                                "give base_cost_per_call instead.")  # fmt: skip
        filled["base_cost_per_call"], sources["base_cost_per_call"] = (
            _per_call(costs, base_model),
            f"ledger:{base_model}",
        )
    return filled | {"sources": sources}


def _per_call(costs: dict[str, Any], model: str) -> Decimal:
    if not costs["inferences"]:
        raise RuleViolation(f"Model {model!r} has no recorded inferences, so no cost per call: give it explicitly.")
    return costs["inference_cost"] / costs["inferences"]


def roi_report(db: Database, request: dict[str, Any]) -> dict[str, Any]:
    """ROI for a request of `RoiInputs` fields plus optional `model` and `base_model`, whose missing
    figures come from the ledger; the report says which inputs came from where."""
    given = dict(request)
    model, base_model = given.pop("model", None), given.pop("base_model", None)
    filled = ledger_roi_inputs(db, model=model, base_model=base_model, given=given)
    sources = filled.pop("sources")
    for name, where in (
        ("training_cost", "model"),
        ("ft_cost_per_call", "model"),
        ("base_cost_per_call", "base_model"),
    ):
        if filled.get(name) is None:
            raise InvalidInput(f"{name} is required: give it, or give {where} to take it from the cost ledger.")
    inputs = RoiInputs.validate(**{k: v for k, v in filled.items() if v is not None})
    result = compute_roi(inputs)
    return {"inputs": vars(inputs), "sources": sources, **vars(result), "verdict": result.verdict}
