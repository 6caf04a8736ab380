"""A stateful stand-in for Ollama's HTTP API, for tests: blobs by digest, create, tags, show, delete.

It checks what Ollama checks: a blob's bytes must hash to the digest it is pushed under;
`create` may only reference blobs it has; a model from files needs a GGUF file or a
safetensors folder with its config.json; `from` must name a model it has (or a base given
at start). Progress of `create` streams as JSON lines, as Ollama's does.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

MODEL_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._/-]*(:[a-zA-Z0-9._-]+)?")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class OllamaState:
    def __init__(self, base_models: tuple[str, ...] = ()) -> None:
        self.blobs: dict[str, bytes] = {}
        self.models: dict[str, dict[str, Any]] = {m: {"base": True, "files": {}} for m in base_models}
        self.lock = threading.Lock()


def create_ollama_app(state: OllamaState | None = None) -> FastAPI:
    state = state or OllamaState()
    app = FastAPI(title="Ollama stand-in", docs_url=None, redoc_url=None)
    app.state.ollama = state

    @app.head("/api/blobs/{digest}")
    def has_blob(digest: str) -> Response:
        return Response(status_code=200 if digest in state.blobs else 404)

    @app.post("/api/blobs/{digest}")
    async def push_blob(digest: str, request: Request) -> Response:
        data = await request.body()
        if not digest.startswith("sha256:") or hashlib.sha256(data).hexdigest() != digest.removeprefix("sha256:"):
            return _error(400, "digest mismatch")
        with state.lock:
            state.blobs[digest] = data
        return Response(status_code=201)

    @app.post("/api/create")
    async def create(request: Request) -> Any:
        body = await request.json()
        name = body.get("model") or ""
        if not MODEL_NAME.fullmatch(name):
            return _error(400, f"invalid model name {name!r}")
        files: dict[str, str] = body.get("files") or {}
        adapters: dict[str, str] = body.get("adapters") or {}
        source = body.get("from")
        with state.lock:
            missing = [d for d in [*files.values(), *adapters.values()] if d not in state.blobs]
            if missing:
                return _error(400, f"blob {missing[0]} not found: push it to /api/blobs first")
            if source is not None and source not in state.models:
                return _error(404, f"model '{source}' not found")
            if source is None:
                if not files:
                    return _error(400, "neither 'from' nor 'files' was specified")
                names = set(files)
                if not any(n.endswith(".gguf") for n in names) and not (
                    any(n.endswith(".safetensors") for n in names) and "config.json" in names
                ):
                    return _error(400, "files must hold a .gguf file, or .safetensors with their config.json")
            if adapters and source is None:
                return _error(400, "an adapter needs 'from': the base model it applies to")
            config = json.loads(state.blobs[files["config.json"]]) if "config.json" in files else {}
            state.models[name] = {
                "base": False, "from": source, "files": files, "adapters": adapters,
                "template": body.get("template"), "system": body.get("system"),
                "parameters": body.get("parameters") or {}, "modified_at": time.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "family": config.get("model_type", "gguf" if any(n.endswith(".gguf") for n in files) else None),
                "size": sum(len(state.blobs[d]) for d in [*files.values(), *adapters.values()]),
            }  # fmt: skip
        steps = ["parsing model files" if files else f"using base model {source}",
                 *(f"using layer {d}" for d in [*files.values(), *adapters.values()]),
                 "converting model" if any(n.endswith(".safetensors") for n in files) else "copying file",
                 "writing manifest", "success"]  # fmt: skip
        if body.get("stream", True):
            return StreamingResponse((json.dumps({"status": s}) + "\n" for s in steps),
                                     media_type="application/x-ndjson")  # fmt: skip
        return {"status": "success"}

    @app.get("/api/tags")
    def tags() -> Any:
        with state.lock:
            return {"models": [
                {"name": n, "model": n, "modified_at": m.get("modified_at"), "size": m.get("size", 0),
                 "digest": hashlib.sha256(n.encode()).hexdigest(),
                 "details": {"format": "gguf", "family": m.get("family")}}
                for n, m in state.models.items() if not m["base"]
            ]}  # fmt: skip

    @app.post("/api/show")
    async def show(request: Request) -> Any:
        name = (await request.json()).get("model")
        with state.lock:
            m = state.models.get(name)
            if m is None or m["base"]:
                return _error(404, f"model '{name}' not found")
            stops = "\n".join(f"stop {s}" for s in m["parameters"].get("stop", []))
            return {"template": m["template"], "system": m["system"], "parameters": stops,
                    "details": {"family": m["family"]}, "modelfile": f"FROM {m['from'] or name}",
                    "model_info": {"general.architecture": m["family"]}, "modified_at": m["modified_at"],
                    "capabilities": ["completion"]}  # fmt: skip

    @app.delete("/api/delete")
    async def delete(request: Request) -> Any:
        name = (await request.json()).get("model")
        with state.lock:
            if name not in state.models or state.models[name]["base"]:
                return _error(404, f"model '{name}' not found")
            del state.models[name]
        return Response(status_code=200)

    return app
