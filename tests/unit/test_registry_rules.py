"""The registry's rules, on the aggregate alone (no store)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.errors import InvalidInput, NotFound, RuleViolation
from domain.registry import RegisteredModel, VersionSpec, VersionStatus, model_id, parse_status, validate_model_name

SPEC = VersionSpec.validate(base_model="gpt-4o-mini-2024-07-18", job_id="ftjob-1", dataset_size=500)


def model_with(n: int, *, training: tuple[int, ...] = ()) -> RegisteredModel:
    model = RegisteredModel.register("support-bot", actor="alice")
    for number in range(1, n + 1):
        model.register_version(SPEC, training=number in training, actor="alice")
    return model


def statuses(model: RegisteredModel) -> dict[int, str]:
    return {n: model.status_of(n).value for n in range(1, model.latest_number + 1)}


def test_versions_are_numbered_from_one_and_new_versions_are_ready() -> None:
    model = model_with(3)
    assert statuses(model) == {1: "READY", 2: "READY", 3: "READY"}


def test_a_version_registered_as_training_is_training() -> None:
    assert model_with(2, training=(2,)).status_of(2) is VersionStatus.TRAINING


def test_a_model_name_finds_its_aggregate_without_an_index() -> None:
    assert RegisteredModel.register("support-bot", actor="a").id == model_id("support-bot")


def test_deploying_archives_the_version_deployed_before() -> None:
    model = model_with(3)
    assert model.deploy(2, actor="a") is None
    assert model.deploy(3, actor="a") == 2
    assert statuses(model) == {1: "READY", 2: "ARCHIVED", 3: "DEPLOYED"}


def test_an_archived_version_can_be_deployed_again() -> None:
    model = model_with(2)
    model.deploy(1, actor="a")
    model.deploy(2, actor="a")
    model.deploy(1, actor="a")
    assert statuses(model) == {1: "DEPLOYED", 2: "ARCHIVED"}


@pytest.mark.parametrize("bad", [VersionStatus.TRAINING, VersionStatus.FAILED])
def test_training_and_failed_versions_are_never_deployed(bad: VersionStatus) -> None:
    model = model_with(1, training=(1,))
    if bad is VersionStatus.FAILED:
        model.set_status(1, VersionStatus.FAILED, actor="a")
    with pytest.raises(RuleViolation, match=f"is {bad.value} and cannot be deployed"):
        model.deploy(1, actor="a")
    assert model.deployed_number is None


def test_training_moves_on_to_ready_or_failed_only() -> None:
    model = model_with(2, training=(1, 2))
    model.set_status(1, VersionStatus.READY, actor="a")
    model.set_status(2, VersionStatus.FAILED, actor="a")
    with pytest.raises(RuleViolation, match="cannot go from READY to TRAINING"):
        model.set_status(1, VersionStatus.TRAINING, actor="a")


def test_failed_is_final() -> None:
    model = model_with(1, training=(1,))
    model.set_status(1, VersionStatus.FAILED, actor="a")
    for status in (VersionStatus.READY, VersionStatus.ARCHIVED, VersionStatus.TRAINING):
        with pytest.raises(RuleViolation, match="FAILED is final"):
            model.set_status(1, status, actor="a")


def test_status_change_to_deployed_is_refused_on_the_aggregate_in_favour_of_deploy() -> None:
    with pytest.raises(RuleViolation, match="Use deploy"):
        model_with(1).set_status(1, VersionStatus.DEPLOYED, actor="a")


def test_rollback_archives_the_deployed_version_and_deploys_the_older_one_in_one_event() -> None:
    model = model_with(3)
    model.deploy(2, actor="a")
    model.deploy(3, actor="a")
    model.collect_events()
    assert model.rollback(2, actor="bob", reason="v3 regressed") == 3
    (event,) = model.collect_events()
    assert type(event).__name__ == "RolledBack"
    assert (event.from_version, event.to_version, event.actor, event.reason) == (3, 2, "bob", "v3 regressed")
    assert statuses(model) == {1: "READY", 2: "DEPLOYED", 3: "ARCHIVED"}


def test_rollback_needs_a_deployed_version() -> None:
    with pytest.raises(RuleViolation, match="nothing to roll back"):
        model_with(2).rollback(1, actor="a")


def test_rollback_goes_only_to_an_older_version() -> None:
    model = model_with(3)
    model.deploy(2, actor="a")
    with pytest.raises(RuleViolation, match="older than the deployed version 2"):
        model.rollback(3, actor="a")
    with pytest.raises(RuleViolation, match="older than the deployed version 2"):
        model.rollback(2, actor="a")


def test_rollback_never_goes_to_a_training_or_failed_version() -> None:
    model = model_with(3, training=(1,))
    model.deploy(3, actor="a")
    with pytest.raises(RuleViolation, match="it is TRAINING"):
        model.rollback(1, actor="a")
    model.set_status(1, VersionStatus.FAILED, actor="a")
    with pytest.raises(RuleViolation, match="it is FAILED"):
        model.rollback(1, actor="a")


def test_at_most_one_version_is_deployed_after_any_sequence_of_commands() -> None:
    model = model_with(5)
    for target in (1, 3, 2, 5, 4, 1):
        model.deploy(target, actor="a")
        assert list(statuses(model).values()).count("DEPLOYED") == 1
    model.deploy(5, actor="a")
    model.rollback(2, actor="a")
    assert list(statuses(model).values()).count("DEPLOYED") == 1


def test_an_unknown_version_is_not_found() -> None:
    with pytest.raises(NotFound, match="has no version 9: it has versions 1 to 2"):
        model_with(2).deploy(9, actor="a")


@pytest.mark.parametrize("name", ["support-bot", "a", "A.b_c-9", "x" * 64])
def test_valid_model_names(name: str) -> None:
    assert validate_model_name(name) == name


@pytest.mark.parametrize("name", ["", "with space", "x" * 65, "slash/name", "ünï", "tab\tname"])
def test_invalid_model_names_are_refused_with_the_rule(name: str) -> None:
    with pytest.raises(InvalidInput, match="1 to 64 characters"):
        validate_model_name(name)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"dataset_size": -1}, "dataset_size must be 0 or more"),
        ({"dataset_size": 1.5}, "dataset_size must be a whole number"),
        ({"accuracy": 1.01}, "accuracy must be between 0 and 1"),
        ({"accuracy": -0.1}, "accuracy must be between 0 and 1"),
        ({"accuracy": float("nan")}, "accuracy must be between 0 and 1"),
        ({"cost": "-1"}, "cost must be a finite amount of 0 or more"),
        ({"cost": "abc"}, "cost must be a decimal amount"),
        ({"base_model": " "}, "base_model is required"),
        ({"job_id": ""}, "job_id is required"),
    ],
)
def test_invalid_version_fields_are_refused_with_what_was_wrong(fields: dict, message: str) -> None:
    values = {"base_model": "b", "job_id": "j", "dataset_size": 1} | fields
    with pytest.raises(InvalidInput, match=message):
        VersionSpec.validate(**values)


def test_cost_is_kept_as_an_exact_decimal() -> None:
    assert VersionSpec.validate(base_model="b", job_id="j", dataset_size=0, cost="0.10").cost == Decimal("0.10")


def test_an_unknown_status_names_the_valid_ones() -> None:
    with pytest.raises(
        InvalidInput, match="Unknown status 'LIVE': use one of TRAINING, READY, DEPLOYED, ARCHIVED, FAILED"
    ):
        parse_status("LIVE")
    assert parse_status("ready") is VersionStatus.READY
