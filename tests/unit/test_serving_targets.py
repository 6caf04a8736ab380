"""A version's serving target: an upstream by name or a base URL, and the upstream's model; never a secret."""

from __future__ import annotations

import pytest

from domain.errors import InvalidInput, RuleViolation
from domain.registry import RegisteredModel, VersionSpec, VersionStatus
from domain.serving import ServingTarget


def test_a_target_names_a_configured_upstream_or_a_base_url_and_the_upstreams_model() -> None:
    by_name = ServingTarget.validate({"upstream": "openai", "model": "ft:gpt-4o-mini-2024-07-18:org::abc"})
    assert by_name.as_dict() == {"upstream": "openai", "model": "ft:gpt-4o-mini-2024-07-18:org::abc"}
    by_url = ServingTarget.validate({"base_url": " http://127.0.0.1:11434/v1/ ", "model": "support-bot:v3"})
    assert by_url.as_dict() == {"base_url": "http://127.0.0.1:11434/v1", "model": "support-bot:v3"}


@pytest.mark.parametrize(("value", "message"), [
    ("https://host/v1", 'serving is {"upstream": "NAME", "model": "..."}'),
    ({"model": "m"}, "exactly one"),
    ({"upstream": "a", "base_url": "https://h/v1", "model": "m"}, "exactly one"),
    ({"upstream": "no spaces", "model": "m"}, "as configured in FT_UPSTREAMS"),
    ({"base_url": "ftp://h/", "model": "m"}, "is not an http(s) URL with a host"),
    ({"base_url": "https://user:sk-secret@h/v1", "model": "m"}, "takes no user:password, query or fragment"),
    ({"base_url": "https://h/v1?key=sk-secret", "model": "m"}, "takes no user:password, query or fragment"),
    ({"upstream": "openai"}, "serving.model is required"),
    ({"upstream": "openai", "model": "m", "api_key": "sk-secret"}, "unknown fields 'api_key'"),
])  # fmt: skip
def test_a_malformed_target_is_refused_saying_what_is_wrong_and_never_echoing_a_secret(
    value: object, message: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        ServingTarget.validate(value)
    assert message in refused.value.detail and "sk-secret" not in refused.value.detail


def registered() -> RegisteredModel:
    model = RegisteredModel.register("support-bot", actor="alice")
    model.register_version(VersionSpec.validate(base_model="gpt-4o-mini", job_id="j1", dataset_size=10),
                           training=False, actor="alice")  # fmt: skip
    return model


def test_setting_a_versions_target_is_an_event_with_who_and_why() -> None:
    model = registered()
    target = ServingTarget.validate({"upstream": "openai", "model": "ft:x"})
    model.set_serving(1, target, actor="bob", reason="moved to the fine-tune")
    event = model.collect_events()[-1]
    assert isinstance(event, RegisteredModel.ServingChanged)
    assert (event.number, event.serving, event.actor, event.reason) == (1, target.as_dict(), "bob",
                                                                        "moved to the fine-tune")
    model.set_serving(1, None, actor="bob")
    assert model.collect_events()[-1].serving is None  # type: ignore[attr-defined]


def test_a_failed_or_missing_version_gets_no_target() -> None:
    model = registered()
    model.set_status(1, VersionStatus.ARCHIVED, actor="alice")
    model.set_serving(1, ServingTarget("m", upstream="openai"), actor="alice")  # archived: it may serve again
    with pytest.raises(Exception, match="has no version 2"):
        model.set_serving(2, ServingTarget("m", upstream="openai"), actor="alice")
    failing = RegisteredModel.register("other", actor="alice")
    failing.register_version(VersionSpec.validate(base_model="b", job_id="j", dataset_size=1), training=True,
                             actor="alice")  # fmt: skip
    failing.set_status(1, VersionStatus.FAILED, actor="alice")
    with pytest.raises(RuleViolation, match="FAILED: it serves nothing"):
        failing.set_serving(1, ServingTarget("m", upstream="openai"), actor="alice")
