"""The gateway's parts without a server: model references, routes and fallbacks, the recorder's queue,
pricing of calls, redaction, and the settings that configure them."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from api.settings import Settings, settings_error_message
from application.call_recorder import CallRecorder
from application.gateway_capture import CaptureRule
from application.gateway_routes import NotRoutable, RouteTable, parse_model_ref
from domain.errors import InvalidInput
from domain.gateway_calls import OK, GatewayCall, price_calls
from domain.pricing import Price

AT = datetime(2026, 12, 2, 12, tzinfo=UTC)


def call(i: int = 0, **fields: Any) -> GatewayCall:
    return GatewayCall(id=f"call_{i}", at=AT, model="support-bot", version=1, requested="support-bot",
                       endpoint="chat.completions", stream=False, caller="app", status=OK, **fields)  # fmt: skip


def test_a_model_reference_is_a_name_or_a_name_at_a_version() -> None:
    assert parse_model_ref("support-bot") == ("support-bot", None)
    assert parse_model_ref("support-bot@3") == ("support-bot", 3)
    cases = [("support-bot@", "after '@' comes a version"), ("support-bot@x", "version number"),
             ("../etc", "Invalid model"), ("x" * 10_000, "Invalid model"), (7, "registered model's name")]
    for bad, says in cases:
        with pytest.raises(InvalidInput, match=says) as raised:
            parse_model_ref(bad)
        assert len(raised.value.detail) <= 300


def versions(*rows: tuple[str, int, str, str | None]) -> list[dict[str, Any]]:
    return [{"model": m, "version": v, "status": s, "deployed_at": f"2026-12-0{v}",
             "serving": None if target is None else {"upstream": "openai", "model": target}}
            for m, v, s, target in rows]  # fmt: skip


def table(rows: list[dict[str, Any]], fallbacks: dict[str, str] | None = None) -> RouteTable:
    def version(name: str, number: int) -> dict[str, Any] | None:
        return next((r for r in rows if (r["model"], r["version"]) == (name, number)), None)

    t = RouteTable(lambda: (10, rows), version, fallbacks)
    t.refresh()
    return t


def test_routes_follow_the_deployed_version_and_fall_back_as_configured() -> None:
    rows = versions(("bot", 1, "ARCHIVED", "ft:one"), ("bot", 2, "DEPLOYED", "ft:two"), ("base", 1, "DEPLOYED", "b"))
    t = table(rows, {"bot": "previous", "base": "bot@2"})
    assert (t.route("bot").version, t.route("bot").target.model) == (2, "ft:two")  # type: ignore[union-attr]
    assert t.route("bot", 1).version == 1
    assert t.fallback(t.route("bot")).label == "bot@1"  # type: ignore[union-attr]
    assert t.fallback(t.route("base")).label == "bot@2"  # type: ignore[union-attr]
    assert t.fallback(t.route("bot", 1)) is None  # the previous version is this one already: no fallback
    assert t.position == 10 and t.wait_for(10, timeout=0)


def test_a_model_that_is_not_deployed_or_not_served_says_which_command_fixes_it() -> None:
    t = table(versions(("bot", 1, "READY", "ft:one"), ("quiet", 1, "DEPLOYED", None)))
    with pytest.raises(NotRoutable, match="ft-cli models deploy bot VERSION"):
        t.route("bot")
    with pytest.raises(NotRoutable, match="ft-cli models set-serving quiet --version 1"):
        t.route("quiet")
    with pytest.raises(NotRoutable, match="has no version 9"):
        t.route("bot", 9)
    assert t.deployed() == {}


def test_a_full_queue_drops_records_and_counts_them_without_blocking() -> None:
    written: list[list[str]] = []
    recorder = CallRecorder(lambda calls: written.append([c.id for c in calls]), capacity=3, batch=2)
    for i in range(5):
        recorder.begin()
        recorder.offer(call(i))
    assert recorder.stats().dropped == 2 and recorder.stats().queued == 3
    recorder.flush()
    assert written == [["call_0", "call_1"], ["call_2"]] and recorder.stats().recorded == 3


def test_a_batch_that_failed_to_write_is_written_again_as_it_was() -> None:
    attempts: list[list[str]] = []

    def flaky(calls: Any) -> None:
        attempts.append([c.id for c in calls])
        if len(attempts) == 1:
            raise ConnectionError("store down")

    recorder = CallRecorder(flaky, batch=2)
    for i in range(3):
        recorder.begin()
        recorder.offer(call(i))
    with pytest.raises(ConnectionError):
        recorder.flush()
    recorder.begin()
    recorder.offer(call(3))
    recorder.flush()
    assert attempts == [["call_0", "call_1"], ["call_0", "call_1"], ["call_2", "call_3"]]


def test_a_call_is_priced_by_its_models_own_price_then_its_upstreams_and_never_at_zero_when_unpriced() -> None:
    own = Price.validate(pattern="support-bot", input_per_1m="1", output_per_1m="2", effective_from=AT)
    upstream = Price.validate(pattern="ft:gpt-4o-mini*", input_per_1m="0.30", output_per_1m="1.20", effective_from=AT)

    def lookup(*prices: Price) -> Any:
        return lambda model, at: next((p for p in prices if p.matches(model) and p.effective_from <= at), None)

    c = call(input_tokens=1000, output_tokens=500, upstream_model="ft:gpt-4o-mini:acme::x")
    assert price_calls([c], lookup(own, upstream)).records[0]["cost"] == "0.002"
    priced = price_calls([c], lookup(upstream))
    assert (priced.records[0]["cost"], priced.records[0]["price"]) == ("0.0009", f"ft:gpt-4o-mini*@{AT.isoformat()}")
    unpriced = price_calls([c], lookup()).records[0]
    assert (unpriced["cost"], unpriced["cost_source"]) == (None, "unpriced")
    assert Decimal(priced.prices[priced.records[0]["price"]]["input_per_1m"]) == Decimal("0.30")  # the unit price kept


def test_redaction_masks_emails_keys_and_numbers_by_default_or_the_rules_given() -> None:
    text = "Mail bob.smith+x@corp.io, token sk-proj_abcDEF123456, phone +1 415 555 0100, order 42."
    assert CaptureRule.build(1, None).redact(text) == "Mail [EMAIL], token [KEY], phone [NUMBER], order 42."
    assert CaptureRule.build(1, [r"order \d+"]).redact(text).endswith("[REDACTED].")
    assert CaptureRule.build(1, []).redact(text) == text


def test_gateway_settings_refuse_bad_fallbacks_and_patterns_saying_what_to_write() -> None:
    with pytest.raises(ValueError) as fallback:
        Settings(gateway_fallbacks={"bot": "not a model!"})
    assert "FT_GATEWAY_FALLBACKS" in settings_error_message(fallback.value)
    with pytest.raises(ValueError) as pattern:
        Settings(gateway_capture={"bot": {"sample_rate": 0.5, "redact": ["(unclosed"]}})
    assert "is not a regular expression" in settings_error_message(pattern.value)
    with pytest.raises(ValueError):
        Settings(gateway_capture={"bot": {"sample_rate": 2}})


def test_the_policy_thread_starts_again_after_a_stop() -> None:
    import threading

    from application.ab_policies import ABPolicies

    checked = threading.Event()
    policies = ABPolicies(None, None, None, None, challenger_p95=lambda test: None)  # type: ignore[arg-type]
    policies.check_all = lambda: checked.set() or []  # type: ignore[method-assign]
    for _ in range(2):
        checked.clear()
        policies.start(0.001)
        thread = policies._thread
        assert thread is not None and checked.wait(10)  # it checks, the second time too
        policies.stop()
        assert not thread.is_alive()
