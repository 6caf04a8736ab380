"""Deterministic registry histories of any length, for tests and benchmarks.

Commands run on the aggregates directly (every rule still applies), and the
events are saved in bulk, so a benchmark can build 200,000 events in seconds.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from domain.registry import DEPLOYABLE, RegisteredModel, VersionSpec, VersionStatus

ACTORS = ("alice", "bob", "ci-bot")
MAX_VERSIONS = 8


def _step(model: RegisteredModel, rng: random.Random) -> None:
    actor, reason = rng.choice(ACTORS), rng.choice((None, "scheduled", "regression", "better eval"))
    statuses = {n: model.status_of(n) for n in range(1, model.latest_number + 1)}
    deployed = model.deployed_number
    deployable = [n for n, s in statuses.items() if s in DEPLOYABLE]
    training = [n for n, s in statuses.items() if s is VersionStatus.TRAINING]
    older = [n for n in deployable if deployed is not None and n < deployed]
    roll = rng.random()
    if len(statuses) < 2 or (roll < 0.15 and len(statuses) < MAX_VERSIONS):
        spec = VersionSpec.validate(
            base_model="gpt-4o-mini-2024-07-18", job_id=f"ftjob-{rng.randrange(10**9)}",
            dataset_size=rng.randrange(10_000), accuracy=round(rng.random(), 4), cost=f"{rng.randrange(10**5)}.25",
        )  # fmt: skip
        model.register_version(spec, training=rng.random() < 0.3, actor=actor, reason=reason)
    elif training and roll < 0.3:
        status = VersionStatus.READY if rng.random() < 0.8 else VersionStatus.FAILED
        model.set_status(rng.choice(training), status, actor=actor, reason=reason)
    elif older and roll < 0.5:
        model.rollback(rng.choice(older), actor=actor, reason=reason)
    elif deployable:
        model.deploy(rng.choice(deployable), actor=actor, reason=reason)
    else:
        spec = VersionSpec.validate(base_model="b", job_id="j", dataset_size=1)
        model.register_version(spec, training=False, actor=actor, reason=reason)


def random_models(
    models: int, events_per_model: int, *, seed: int = 7, prefix: str = "model"
) -> Iterator[RegisteredModel]:
    """Yields models, each with `events_per_model` pending events (creation included)."""
    rng = random.Random(seed)
    for m in range(models):
        model = RegisteredModel.register(f"{prefix}-{m:05d}", actor=rng.choice(ACTORS))
        while len(model.pending_events) < events_per_model:
            _step(model, rng)
        yield model


def save_history(
    app, models: int, events_per_model: int, *, seed: int = 7, chunk: int = 20, prefix: str = "model"
) -> int:
    """Saves the generated models in chunks; returns the number of events appended."""
    total, batch = 0, []
    for model in random_models(models, events_per_model, seed=seed, prefix=prefix):
        batch.append(model)
        total += len(model.pending_events)
        if len(batch) == chunk:
            app.save(*batch)
            batch = []
    if batch:
        app.save(*batch)
    return total
