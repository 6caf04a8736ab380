"""Builds the gateway from the server's settings and store: its routes, recorder, upstreams and credentials.

The credential rule lives here: a version served by a configured upstream (`{upstream: NAME}`) gets that
upstream's URL and key; a version served at a base URL gets the key of the configured endpoint with that
very URL, if there is one, and none otherwise; such a URL must also pass the outbound rule (no private
or metadata addresses unless FT_ALLOW_PRIVATE_ENDPOINTS). The caller's own Authorization never leaves.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from adapters import tokens
from adapters.call_journal import FileJournal
from adapters.upstream import UpstreamClient
from api.http.gateway import Gateway, GatewayProblem, Target
from api.runtime import Runtime
from api.settings import ENDPOINT_EXAMPLE, Settings
from application.call_recorder import CallRecorder
from application.gateway_capture import Capture, CaptureRule
from application.gateway_routes import Route, RouteTable
from domain.ab_testing import call_sample
from domain.errors import InvalidInput
from domain.examples import parse_example
from domain.gateway_calls import OK, GatewayCall
from domain.serving import ServingTarget
from projections.ab_stats import running_gateway_tests
from projections.registry import get_version, serving_versions

log = logging.getLogger(__name__)
#: how long an outbound check of a base URL holds (its host is resolved again after)
CHECK_SECONDS = 60.0
GATEWAY_ACTOR = "gateway"


class TargetResolver:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._checked: dict[ServingTarget, tuple[float, Target | GatewayProblem]] = {}

    def __call__(self, route: Route) -> Target:
        target = route.target
        assert target is not None  # the route table serves only versions with a target
        cached = self._checked.get(target)
        if cached is None or time.monotonic() - cached[0] > CHECK_SECONDS:
            cached = self._checked[target] = (time.monotonic(), self._resolve(route, target))
        if isinstance(cached[1], GatewayProblem):
            raise cached[1]
        return cached[1]

    def _resolve(self, route: Route, target: ServingTarget) -> Target | GatewayProblem:
        endpoints = self.settings.outbound_endpoints
        if target.upstream is not None:
            found = endpoints.get(target.upstream)
            if found is None:
                return GatewayProblem(
                    502, "unknown-upstream", "Unknown upstream",
                    f"{route.label} is served by upstream {target.upstream!r}, which is not configured on this "
                    f"server (configured: {', '.join(sorted(endpoints))}). Set {ENDPOINT_EXAMPLE}, or change where "
                    f"the version is served with `ft-cli models set-serving {route.model} --version {route.version}`.",
                )  # fmt: skip
            return Target(found.chat_url, found.key, target.upstream)
        url = target.base_url or ""
        for name, endpoint in endpoints.items():  # the very URL of a configured endpoint: its own key
            if endpoint.chat_url == url:
                return Target(url, endpoint.key, name)
        try:
            self.settings.check_outbound(url)
        except InvalidInput as e:
            return GatewayProblem(502, "outbound-refused", "Upstream refused by the outbound rule", e.detail)
        return Target(url, None, url)


def open_gateway(settings: Settings, runtime: Runtime) -> Gateway:
    db = runtime.db
    routes = RouteTable(lambda: serving_versions(db), lambda name, number: get_version(db, name, number),
                        settings.gateway_fallbacks, load_tests=lambda: running_gateway_tests(db))  # fmt: skip
    recorder = CallRecorder(
        lambda calls: write_calls(runtime, calls),
        capacity=settings.gateway_queue, batch=settings.gateway_flush_batch, interval=settings.gateway_flush_interval,
        journal=FileJournal(settings.gateway_journal_dir, runtime.config.url),
    )  # fmt: skip
    upstream = UpstreamClient(connect_timeout=settings.gateway_connect_timeout,
                              read_timeout=settings.gateway_read_timeout)  # fmt: skip
    capture = Capture({model: CaptureRule.build(rule.sample_rate, rule.redact)
                       for model, rule in settings.gateway_capture.items()})  # fmt: skip
    return Gateway(routes, recorder, upstream, tokens=settings.tokens, resolve_target=TargetResolver(settings),
                   estimate=tokens.estimate_call, max_retry_after=settings.gateway_max_retry_after,
                   refresh_interval=settings.projection_interval, capture=capture)  # fmt: skip


def write_calls(runtime: Runtime, calls: Sequence[GatewayCall]) -> None:
    """The samples of the calls that ran through an A/B test, then one batch of call records, then the
    examples captured from them. Samples go first: feedback names a call the calls view holds, so its
    sample is always counted before it. An example the collection would refuse (a message over its size
    limit) is left out, so one odd call never blocks the rest."""
    batch = runtime.ledger.price_calls(calls)
    samples: dict[str, list[dict[str, Any]]] = {}
    for record in batch.records:
        call = record["call"]
        if record["ab_test"] is not None:
            samples.setdefault(record["ab_test"], []).append(call_sample(
                record["id"], call["arm"], latency_ms=record["latency_ms"], cost=record["cost"], at=record["at"],
                failed=call["status"] != OK or call["fallback_from"] is not None))  # fmt: skip
    for test_id, test_samples in samples.items():
        runtime.ab.record_call_samples(test_id, test_samples, actor=GATEWAY_ACTOR)
    runtime.ledger.record_calls(batch, actor=GATEWAY_ACTOR)
    now = datetime.now(UTC)
    examples = []
    for call in calls:
        if call.example is None:
            continue
        try:
            parse_example(call.example, now)
        except ValueError as e:
            log.info("gateway: call %s is not kept as an example: %s", call.id, e)
            continue
        examples.append(call.example)
    if examples:
        runtime.ingestion.collect_examples(examples, actor=GATEWAY_ACTOR)
