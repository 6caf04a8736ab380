"""The projections this service maintains, in one place for the engine, CLI and API."""

from __future__ import annotations

from projections.ab_stats import ABStatsProjection
from projections.audit import AuditTrailProjection
from projections.costs import CostProjection
from projections.datasets import DatasetProjection
from projections.deployments import DeploymentStatusProjection
from projections.engine import Projection
from projections.evaluations import EvaluationsProjection
from projections.examples import ExamplesProjection
from projections.gateway_calls import GatewayCallsProjection
from projections.jobs import JobsProjection
from projections.registry import RegistryListingProjection


def default_projections() -> list[Projection]:
    return [
        DeploymentStatusProjection(),
        RegistryListingProjection(),
        AuditTrailProjection(),
        CostProjection(),
        ABStatsProjection(),
        ExamplesProjection(),
        DatasetProjection(),
        JobsProjection(),
        EvaluationsProjection(),
        GatewayCallsProjection(),
    ]
