"""`GET /v1/ab-tests/{id}/assignment?unit=U` answered in front of the framework, for the common request.

An application asks for a unit's arm on every page view, so the answer must cost next to nothing: it is
a hash of test id and unit (no read, no write) once the test's settings are cached. FastAPI's request
machinery (dependencies, validation, the middleware stack) costs several times the hash, so a request
that is exactly the common one (a known token or none needed, a cached test, a plain `unit` of 1 to 256
printable characters and no other parameter) is answered here with the same body the route gives;
anything else (an unknown test, a bad unit or token, `min_position`) goes on to the route, which
answers it as it always did and caches the test for the next request.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from api.http.routes.ab_tests import assigned_config
from domain.ab_testing import assign
from domain.values import NAME_FORBIDDEN

PREFIX, SUFFIX = "/v1/ab-tests/", "/assignment"
MAX_UNIT = 256


class AssignmentFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and scope["method"] == "GET" and path.startswith(PREFIX) and path.endswith(SUFFIX):
            body = self._answer(scope, path[len(PREFIX) : -len(SUFFIX)])
            if body is not None:
                await send({"type": "http.response.start", "status": 200, "headers": [
                    (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})  # fmt: skip
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    @staticmethod
    def _answer(scope: Scope, test_id: str) -> bytes | None:
        app = scope.get("app")
        runtime = getattr(getattr(app, "state", None), "runtime", None)
        settings = getattr(getattr(app, "state", None), "settings", None)
        if runtime is None or settings is None:
            return None
        config = assigned_config(runtime, test_id)
        if config is None:
            return None
        try:
            params = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True,
                               strict_parsing=True, errors="strict")  # fmt: skip
        except (ValueError, UnicodeDecodeError):
            return None
        if len(params) != 1 or params[0][0] != "unit":
            return None
        unit = params[0][1]
        if not 0 < len(unit) <= MAX_UNIT or NAME_FORBIDDEN.search(unit):
            return None
        if settings.tokens and not _authorized(scope, settings.tokens):
            return None
        arm = assign(test_id, unit, config.split)
        return json.dumps({"test_id": test_id, "unit": unit, "arm": arm, "model": config.model_of(arm)},
                          ensure_ascii=False, separators=(",", ":")).encode()  # fmt: skip


def _authorized(scope: Scope, tokens: dict[str, str]) -> bool:
    for key, value in scope["headers"]:
        if key == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return scheme.lower() == "bearer" and token.strip() in tokens
    return False
