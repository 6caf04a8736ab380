"""The gateway through the official openai SDK, on both stores: answers as the upstream gave them, routing
by the registry, one record per call with its tokens and cost, failover, and no credential leaks."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import openai
import pytest

from api.http.app import create_app
from api.runtime import Runtime
from api.settings import CaptureSetting, Settings
from projections.examples import ExampleFilter, list_examples
from projections.gateway_calls import get_call, list_calls
from sandbox.openai_finetuning import Fault
from sandbox.server import LoopbackServer
from tests.support.gateway import (
    ANSWER,
    APP_TOKEN,
    FT_MODEL,
    MESSAGES,
    UPSTREAM_KEY,
    GatewayUnderTest,
    gateway_under_test,
    upstream_process,
)

# the shipped price of gpt-4o-mini's fine-tunes, per 1M tokens
FT_INPUT, FT_OUTPUT = Decimal("0.30"), Decimal("1.20")


@pytest.fixture
def gw(runtime: Runtime, tmp_path: Path) -> Iterator[GatewayUnderTest]:
    with gateway_under_test(runtime, tmp_path) as g:
        yield g


def record(gw: GatewayUnderTest, call_id: str) -> dict:
    gw.flushed()
    found = get_call(gw.runtime.db, call_id)
    assert found is not None, call_id
    return found


def test_a_buffered_call_returns_the_upstreams_answer_and_is_recorded_with_its_cost(gw: GatewayUnderTest) -> None:
    gw.register()
    raw = gw.sdk().chat.completions.with_raw_response.create(model="support-bot", messages=MESSAGES)
    answer = raw.parse()
    assert answer.choices[0].message.content == ANSWER and answer.model == FT_MODEL
    call_id, version = raw.headers["x-ft-call-id"], raw.headers["x-ft-model-version"]
    assert version == "1" and raw.headers["x-ft-model"] == "support-bot"
    r = record(gw, call_id)
    assert (r["model"], r["version"], r["status"], r["upstream"], r["upstream_model"]) == (
        "support-bot", 1, "ok", "sandbox", FT_MODEL)
    assert (r["input_tokens"], r["output_tokens"]) == (answer.usage.prompt_tokens, answer.usage.completion_tokens)
    assert r["estimated"] is False and r["cost_source"] == "catalog"
    assert r["cost"] == (r["input_tokens"] * FT_INPUT + r["output_tokens"] * FT_OUTPUT) / 1_000_000
    assert r["caller"] == "app" and r["http_status"] == 200 and r["latency_ms"] >= r["ttfb_ms"] > 0


def test_a_streamed_call_relays_the_chunks_and_costs_exactly_what_the_buffered_one_does(gw: GatewayUnderTest) -> None:
    gw.register()
    sdk = gw.sdk()
    buffered = sdk.chat.completions.with_raw_response.create(model="support-bot", messages=MESSAGES)
    with sdk.chat.completions.with_streaming_response.create(model="support-bot", messages=MESSAGES,
                                                             stream=True) as streamed:  # fmt: skip
        assert streamed.headers["content-type"].startswith("text/event-stream")
        chunks = list(streamed.parse())
        stream_id = streamed.headers["x-ft-call-id"]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ANSWER
    assert all(c.usage is None and c.choices for c in chunks)  # not asked for: the usage chunk is stripped
    sent = gw.upstream.state.chat.seen[-1]["body"]
    assert sent["stream_options"] == {"include_usage": True} and sent["model"] == FT_MODEL
    whole, part = record(gw, buffered.headers["x-ft-call-id"]), record(gw, stream_id)
    assert part["stream"] is True and part["status"] == "ok" and part["estimated"] is False
    assert (part["input_tokens"], part["output_tokens"], part["cost"]) == (
        whole["input_tokens"], whole["output_tokens"], whole["cost"])
    assert part["cost"] > 0


def test_a_stream_that_asks_for_usage_gets_the_upstreams_usage_chunk(gw: GatewayUnderTest) -> None:
    gw.register()
    chunks = list(gw.sdk().chat.completions.create(model="support-bot", messages=MESSAGES, stream=True,
                                                   stream_options={"include_usage": True}))  # fmt: skip
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_the_legacy_completions_go_through_too(gw: GatewayUnderTest) -> None:
    gw.register()
    raw = gw.sdk().completions.with_raw_response.create(model="support-bot", prompt="How do I update the billing "
                                                        "address?")  # fmt: skip
    assert raw.parse().choices[0].text == ANSWER
    r = record(gw, raw.headers["x-ft-call-id"])
    assert r["endpoint"] == "completions" and r["status"] == "ok" and r["output_tokens"] > 0


def test_a_deploy_and_a_rollback_move_the_next_calls(gw: GatewayUnderTest) -> None:
    gw.register(serving={"upstream": "sandbox", "model": "ft:gpt-4o-mini-2024-07-18:acme::v1"})
    two = gw.register(serving={"upstream": "sandbox", "model": "ft:gpt-4o-mini-2024-07-18:acme::v2"})
    sdk = gw.sdk()

    def served() -> tuple[str, str]:
        raw = sdk.chat.completions.with_raw_response.create(model="support-bot", messages=MESSAGES)
        return raw.headers["x-ft-model-version"], raw.parse().model

    assert two == 2 and served() == ("2", "ft:gpt-4o-mini-2024-07-18:acme::v2")
    gw.rollback("support-bot", 1)
    assert served() == ("1", "ft:gpt-4o-mini-2024-07-18:acme::v1")
    gw.deploy("support-bot", 2)
    assert served() == ("2", "ft:gpt-4o-mini-2024-07-18:acme::v2")
    pinned = sdk.chat.completions.with_raw_response.create(model="support-bot@1", messages=MESSAGES)
    assert pinned.headers["x-ft-model-version"] == "1"


def test_a_model_with_no_deployed_version_answers_404_naming_the_deploy_command(gw: GatewayUnderTest) -> None:
    gw.register(deploy=False)
    with pytest.raises(openai.NotFoundError) as raised:
        gw.sdk().chat.completions.create(model="support-bot", messages=MESSAGES)
    assert raised.value.response.headers["content-type"] == "application/problem+json"
    assert "ft-cli models deploy support-bot VERSION" in raised.value.message
    with pytest.raises(openai.NotFoundError):
        gw.sdk().chat.completions.create(model="nobody", messages=MESSAGES)
    gw.flushed()
    assert list_calls(gw.runtime.db) == []  # refused before routing: nothing recorded


def test_the_models_list_holds_the_deployed_models(gw: GatewayUnderTest) -> None:
    gw.register()
    gw.register("drafts", deploy=False)
    assert [(m.id, m.owned_by) for m in gw.sdk().models.list()] == [("support-bot", "ft-lifecycle")]


def test_a_wrong_token_is_refused_and_the_callers_token_never_reaches_the_upstream(gw: GatewayUnderTest) -> None:
    gw.register()
    with pytest.raises(openai.AuthenticationError):
        gw.sdk(token="tok-wrong").chat.completions.create(model="support-bot", messages=MESSAGES)
    raw = gw.sdk().chat.completions.with_raw_response.create(model="support-bot", messages=MESSAGES)
    seen = gw.upstream.state.chat.seen[-1]["headers"]
    assert seen["authorization"] == f"Bearer {UPSTREAM_KEY}" and APP_TOKEN not in str(seen)
    r = record(gw, raw.headers["x-ft-call-id"])
    assert UPSTREAM_KEY not in str(r) and APP_TOKEN not in str(r) and UPSTREAM_KEY not in raw.text


def test_a_base_url_target_gets_no_server_credential(gw: GatewayUnderTest) -> None:
    # the sandbox at another base URL than the configured endpoint's: the gateway sends it no key, and the
    # upstream's 401 is passed on to the caller as it is
    gw.register(serving={"base_url": f"{gw.upstream.root_url}/openai", "model": "llama3.2"})
    with pytest.raises(openai.AuthenticationError) as raised:
        gw.sdk().chat.completions.create(model="support-bot", messages=MESSAGES)
    assert "You didn't provide an API key" in raised.value.message
    gw.flushed()
    [r] = list_calls(gw.runtime.db)
    assert (r["status"], r["error_kind"], r["http_status"]) == ("error", "upstream_401", 401)


def test_a_429_with_retry_after_is_retried_once_and_the_record_says_so(gw: GatewayUnderTest) -> None:
    gw.register()
    gw.upstream.state.faults.append(Fault(429, "POST", "/v1/chat/completions", 1, retry_after=0.05))
    raw = gw.sdk().chat.completions.with_raw_response.create(model="support-bot", messages=MESSAGES)
    assert raw.parse().choices[0].message.content == ANSWER
    r = record(gw, raw.headers["x-ft-call-id"])
    assert [(a["outcome"], a["status_code"]) for a in r["attempts"]] == [("rate_limited", 429), ("ok", 200)]
    assert r["attempts"][1]["waited_ms"] == pytest.approx(50)


def test_an_upstream_that_refuses_connections_falls_back_and_the_record_says_so(
    runtime: Runtime, tmp_path: Path
) -> None:
    with gateway_under_test(runtime, tmp_path, gateway_fallbacks={"support-bot": "support-bot-base"}) as gw:
        gw.register("support-bot-base", serving={"upstream": "sandbox", "model": "gpt-4o-mini-2024-07-18"})
        gw.register(serving={"base_url": "http://127.0.0.1:9/v1", "model": FT_MODEL})  # nothing listens on port 9
        raw = gw.sdk().chat.completions.with_raw_response.create(model="support-bot", messages=MESSAGES)
        assert raw.parse().choices[0].message.content == ANSWER and raw.headers["x-ft-model"] == "support-bot-base"
        r = record(gw, raw.headers["x-ft-call-id"])
        assert r["fallback_from"] == "support-bot@1" and (r["model"], r["status"]) == ("support-bot-base", "ok")
        assert [a["outcome"] for a in r["attempts"]] == ["connect_error", "connect_error", "ok"]


def test_with_no_fallback_an_unreachable_upstream_answers_502_and_is_recorded(gw: GatewayUnderTest) -> None:
    gw.register(serving={"base_url": "http://127.0.0.1:9/v1", "model": FT_MODEL})
    with pytest.raises(openai.InternalServerError) as raised:
        gw.sdk().chat.completions.create(model="support-bot", messages=MESSAGES)
    assert raised.value.status_code == 502 and "connect_error" in raised.value.message
    gw.flushed()
    [r] = list_calls(gw.runtime.db)
    assert (r["status"], r["error_kind"], r["http_status"], r["cost"]) == ("error", "connect_error", 502, Decimal(0))


def test_a_stream_dropped_midway_ends_with_an_error_the_sdk_raises_and_is_recorded_interrupted(
    gw: GatewayUnderTest,
) -> None:
    gw.register()
    gw.upstream.state.chat.drop_after_chunks = 3
    with pytest.raises(openai.APIError):
        for _ in gw.sdk().chat.completions.create(model="support-bot", messages=MESSAGES, stream=True):
            pass
    gw.flushed()
    [r] = list_calls(gw.runtime.db)
    assert (r["status"], r["error_kind"], r["estimated"]) == ("interrupted", "upstream_dropped", True)
    assert r["output_tokens"] > 0  # what arrived before the drop, counted


def test_the_recorder_reports_itself_in_the_health_check_and_the_metrics(gw: GatewayUnderTest) -> None:
    gw.register()
    gw.sdk().chat.completions.create(model="support-bot", messages=MESSAGES)
    gw.flushed()
    health = httpx.get(f"{gw.root}/healthz").json()["gateway"]
    assert health["recorded"] == 1 and health["dropped"] == 0 and health["queue_full"] is False
    metrics = httpx.get(f"{gw.root}/metrics").text.splitlines()
    assert "ft_gateway_records_written_total 1" in metrics and "ft_gateway_queue_full 0" in metrics


def test_the_calls_and_stats_views_answer_over_http_and_the_cli(gw: GatewayUnderTest) -> None:
    gw.register()
    sdk = gw.sdk()
    for _ in range(3):
        sdk.chat.completions.create(model="support-bot", messages=MESSAGES)
    list(sdk.chat.completions.create(model="support-bot", messages=MESSAGES, stream=True))
    gw.flushed()
    with gw.api() as api:
        page = api.get("/v1/gateway/calls", params={"limit": 2}).json()
        rest = api.get("/v1/gateway/calls", params={"cursor": page["next_cursor"]}).json()
        streamed = api.get("/v1/gateway/calls", params={"status": "ok", "model": "support-bot"}).json()["calls"]
        stats = api.get("/v1/gateway/stats", params={"bucket": "day"}).json()
        one = api.get(f"/v1/gateway/calls/{page['calls'][0]['id']}")
        bad = api.get("/v1/gateway/calls", params={"status": "fine"})
    assert len(page["calls"]) == 2 and len(rest["calls"]) == 2 and rest["next_cursor"] is None
    assert [c["stream"] for c in streamed] == [False, False, False, True]
    assert one.status_code == 200 and one.json()["id"] == page["calls"][0]["id"]
    assert bad.status_code == 422
    [model] = stats["models"]
    assert (model["model"], model["version"], model["calls"], model["errors"]) == ("support-bot", 1, 4, 0)
    assert Decimal(model["cost"]) == sum(Decimal(c["cost"]) for c in streamed)
    assert model["latency_p50_ms"] <= model["latency_p95_ms"] and len(stats["series"]) == 1

    from typer.testing import CliRunner

    from api.cli.app import app

    result = CliRunner().invoke(app, ["gateway", "stats", "--json", "--database-url", gw.runtime.config.url])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["models"][0]["calls"] == 4
    listed = CliRunner().invoke(app, ["gateway", "calls", "--json", "--database-url", gw.runtime.config.url])
    assert [c["id"] for c in json.loads(listed.output)] == [c["id"] for c in streamed]


@pytest.fixture
def remote_gw(runtime: Runtime, tmp_path: Path) -> Iterator[GatewayUnderTest]:
    """The gateway in front of an upstream in another process (a core of its own)."""
    with upstream_process() as url, gateway_under_test(runtime, tmp_path, endpoints={
            "remote": {"base_url": url, "api_key": UPSTREAM_KEY}}) as g:  # fmt: skip
        yield g


def test_ten_thousand_mixed_calls_leave_exactly_one_record_each(remote_gw: GatewayUnderTest) -> None:
    """Buffered and streamed calls, upstream errors, and clients that leave in the middle of a stream."""
    gw = remote_gw
    gw.register(serving={"upstream": "remote", "model": FT_MODEL})
    gw.register("broken", serving={"base_url": "http://127.0.0.1:9/v1", "model": FT_MODEL})
    gw.register("slow-bot")  # the in-process upstream, 5 ms between chunks: a client that leaves does so mid-stream
    gw.upstream.state.chat.chunk_interval = 0.005
    sdk = openai.AsyncOpenAI(base_url=f"{gw.root}/gateway/v1", api_key=APP_TOKEN, max_retries=0,
                             http_client=httpx.AsyncClient(limits=httpx.Limits(max_connections=64)))  # fmt: skip
    total, ids = 10_000, []
    outcomes: dict[str, int] = {"buffered": 0, "streamed": 0, "error": 0, "left": 0}

    async def one(i: int) -> None:
        kind = ("buffered", "streamed", "error", "left")[i % 4]
        outcomes[kind] += 1
        if kind == "error":
            try:
                await sdk.chat.completions.create(model="broken", messages=MESSAGES)
            except openai.InternalServerError as e:
                ids.append(e.response.headers["x-ft-call-id"])
            return
        if kind == "buffered":
            raw = await sdk.chat.completions.with_raw_response.create(model="support-bot", messages=MESSAGES)
            ids.append(raw.headers["x-ft-call-id"])
            return
        async with sdk.chat.completions.with_streaming_response.create(
            model="slow-bot" if kind == "left" else "support-bot", messages=MESSAGES, stream=True
        ) as response:
            ids.append(response.headers["x-ft-call-id"])
            async for _chunk in await response.parse():
                if kind == "left":
                    break  # the client leaves after its first chunk: the connection closes

    async def run() -> None:
        queue = iter(range(total))

        async def worker() -> None:
            for i in queue:
                await one(i)

        await asyncio.gather(*(worker() for _ in range(8)))  # 8 callers at once: one process serves all
        await sdk.close()

    asyncio.run(run())
    gw.flushed()
    calls = []
    after = None
    while page := list_calls(gw.runtime.db, after=after, limit=1000):
        calls += page
        after = (page[-1]["at"], page[-1]["id"])
    assert len(ids) == len(set(ids)) == total
    assert sorted(c["id"] for c in calls) == sorted(ids)
    statuses = {s: sum(1 for c in calls if c["status"] == s) for s in ("ok", "error", "cancelled", "interrupted")}
    assert statuses["error"] == outcomes["error"] == total // 4
    assert statuses["cancelled"] == outcomes["left"] and statuses["interrupted"] == 0
    assert statuses["ok"] == outcomes["buffered"] + outcomes["streamed"]
    assert gw.gateway.recorder.stats().dropped == 0


def test_capture_keeps_sampled_successful_calls_as_redacted_examples_with_their_call_id(
    runtime: Runtime, tmp_path: Path
) -> None:
    capture = {"support-bot": CaptureSetting(sample_rate=1.0)}
    with gateway_under_test(runtime, tmp_path, gateway_capture=capture) as gw:
        gw.register()
        gw.register("other")  # no capture rule: off
        sdk = gw.sdk()
        secret = [{"role": "user", "content": "I am ann@example.com, key sk-live_4f9a8b7c6d5e, card 4111 1111 "
                   "1111 1111. How do I update the billing address?"}]  # fmt: skip
        buffered = sdk.chat.completions.with_raw_response.create(model="support-bot", messages=secret)
        with sdk.chat.completions.with_streaming_response.create(model="support-bot", messages=MESSAGES,
                                                                 stream=True) as streamed:  # fmt: skip
            list(streamed.parse())
        sdk.chat.completions.create(model="other", messages=MESSAGES)
        gw.upstream.state.chat.drop_after_chunks = 2
        with pytest.raises(openai.APIError):
            list(sdk.chat.completions.create(model="support-bot", messages=MESSAGES, stream=True))
        gw.flushed()
        examples = list_examples(gw.runtime.db, ExampleFilter(source="gateway"))
    by_id = {e["example_id"]: e for e in examples}
    assert set(by_id) == {buffered.headers["x-ft-call-id"], streamed.headers["x-ft-call-id"]}  # ok calls only
    kept = by_id[buffered.headers["x-ft-call-id"]]
    assert kept["source"] == "gateway" and kept["model"] == "support-bot" and "version:1" in kept["tags"]
    assert kept["messages"][0]["content"] == ("I am [EMAIL], key [KEY], card [NUMBER]. How do I update the "
                                              "billing address?")  # fmt: skip
    assert kept["messages"][-1] == {"role": "assistant", "content": "I am not sure."}  # the sandbox knows not
    assert by_id[streamed.headers["x-ft-call-id"]]["messages"][-1]["content"] == ANSWER


def test_odd_bodies_get_a_clear_answer_and_the_gateway_keeps_serving(gw: GatewayUnderTest) -> None:
    gw.register()
    url, auth = f"{gw.root}/gateway/v1/chat/completions", {"Authorization": f"Bearer {APP_TOKEN}"}
    odd: list[tuple[bytes, int, str]] = [
        (b"not json", 400, "invalid-json"),
        (b"\xff\xfe\x00", 400, "invalid-json"),
        (b"[" * 100_000 + b"]" * 100_000, 400, "invalid-json"),
        (b'["a list"]', 400, "invalid-request"),
        (b'{"model": 7}', 400, "invalid-request"),
        (b'{"model": "' + b"x" * 100_000 + b'"}', 400, "invalid-model"),
        (b'{"model": "support-bot@0"}', 400, "invalid-model"),
        (b'{"model": "support-bot@99"}', 404, "model-not-routable"),
    ]
    for body, status, slug in odd:
        r = httpx.post(url, content=body, headers=auth, timeout=30)
        assert (r.status_code, r.json()["type"]) == (status, f"/problems/{slug}"), body[:40]
        assert r.json()["error"]["code"] == slug and len(r.text) < 2000
    # shapes the upstream refuses are its business: passed on as it answered, and recorded
    for body in ({"model": "support-bot", "messages": "hi", "stream": True, "stream_options": ["x"]},
                 {"model": "support-bot", "messages": [{"role": "user", "content": {"deep": [1, 2]}}]}):
        r = httpx.post(url, json=body, headers=auth, timeout=30)
        assert r.status_code in (200, 400, 422), r.text
    assert httpx.post(url, content=b"x" * (17 * 2**20), headers=auth, timeout=30).status_code == 413
    assert httpx.get(url, headers=auth).status_code == 405
    assert gw.sdk().chat.completions.create(model="support-bot", messages=MESSAGES).choices[0].message.content == ANSWER


def test_with_the_gateway_turned_off_its_paths_are_not_served(runtime: Runtime, tmp_path: Path) -> None:
    app = create_app(Settings(database_url=runtime.config.url, gateway=False, poll_jobs=False), runtime)
    with LoopbackServer(lambda: app, lifespan="on") as server:
        root = server.root_url
        assert httpx.get(f"{root}/gateway/v1/models").status_code == 404
        assert httpx.get(f"{root}/healthz").json()["gateway"] is None


def test_a_failure_inside_the_gateway_answers_500_records_the_call_and_the_next_call_is_served(
    gw: GatewayUnderTest,
) -> None:
    gw.register()
    resolve = gw.gateway.resolve_target

    def broken(route: object) -> object:
        raise RuntimeError("a bug")

    gw.gateway.resolve_target = broken
    with pytest.raises(openai.InternalServerError) as raised:
        gw.sdk().chat.completions.create(model="support-bot", messages=MESSAGES)
    assert raised.value.status_code == 500 and "the server log has the cause" in raised.value.message
    gw.gateway.resolve_target = resolve
    assert gw.sdk().chat.completions.create(model="support-bot", messages=MESSAGES).choices[0].message.content == ANSWER
    gw.flushed()
    assert [(c["status"], c["error_kind"]) for c in list_calls(gw.runtime.db)] == [("error", "gateway_error"),
                                                                                 ("ok", None)]


def test_azure_openai_is_an_upstream_through_its_v1_api(runtime: Runtime, tmp_path: Path) -> None:
    with gateway_under_test(runtime, tmp_path, azure=True) as gw:
        gw.register(serving={"upstream": "azure", "model": "support-bot-deployment"})
        answer = gw.sdk().chat.completions.create(model="support-bot", messages=MESSAGES)
        seen = gw.upstream.state.chat.seen[-1]
    assert answer.choices[0].message.content == ANSWER
    assert seen["body"]["model"] == "support-bot-deployment"  # Azure's deployment name
    assert seen["headers"]["authorization"] == f"Bearer {UPSTREAM_KEY}"
    settings = Settings(azure_openai_endpoint="https://acme.openai.azure.com/", openai_api_version="2025-04-01-preview",
                        azure_openai_api_key=UPSTREAM_KEY)  # fmt: skip
    azure = settings.outbound_endpoints["azure"]
    assert (azure.chat_url, azure.key) == ("https://acme.openai.azure.com/openai/v1", UPSTREAM_KEY)


def test_a_full_record_queue_never_blocks_a_call_and_says_so_in_health_and_metrics(
    runtime: Runtime, tmp_path: Path
) -> None:
    # one record fits, and the writer waits a minute: the second and third calls find the queue full
    with gateway_under_test(runtime, tmp_path, gateway_queue=1, gateway_flush_interval=60.0) as gw:
        gw.register()
        answers = [gw.sdk().chat.completions.create(model="support-bot", messages=MESSAGES) for _ in range(3)]
        assert [a.choices[0].message.content for a in answers] == [ANSWER] * 3
        health = httpx.get(f"{gw.root}/healthz").json()["gateway"]
        metrics = httpx.get(f"{gw.root}/metrics").text.splitlines()
        assert (health["queued"], health["dropped"], health["queue_full"]) == (1, 2, True)
        assert "ft_gateway_records_dropped_total 2" in metrics and "ft_gateway_queue_full 1" in metrics
