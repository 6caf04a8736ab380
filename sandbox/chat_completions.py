"""The sandbox's model calls: OpenAI's `POST /chat/completions` (buffered, or streamed as server-sent
events) and the legacy `POST /completions`, answering from a table of known prompts.

It behaves as OpenAI's API does where clients can tell: a streamed answer is the buffered one cut
into chunks (`chat.completion.chunk`, the role in the first delta, `finish_reason` in the last,
then `data: [DONE]`); `usage` comes in one last chunk with empty `choices` only when the request
asks for it (`stream_options.include_usage`), and every other chunk then carries `usage: null`.
Tokens are counted with tiktoken. For tests and benchmarks it can wait before answering
(`chat_delay`), space its chunks (`chunk_interval`) and drop the connection in the middle of a
stream (`drop_after_chunks`); faults before the answer (429 with Retry-After, 500) are queued
through the sandbox's `/_sandbox/faults`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from adapters import tokens

#: words and the spaces before them: a streamed answer's chunks join back into the answer
_PIECES = re.compile(r"\s*\S+")


@dataclass
class ChatSettings:
    """What the model calls answer, and how they misbehave on purpose."""

    #: the answer each prompt gets from a model that knows it
    answers: dict[str, str] = field(default_factory=dict)
    #: the share of prompts each model knows (decided by a hash of model and prompt: deterministic)
    accuracy: dict[str, float] = field(default_factory=dict)
    #: seconds before the first byte of an answer (a model takes time to answer)
    delay: float = 0.0
    #: seconds between the chunks of a streamed answer
    chunk_interval: float = 0.0
    #: a stream ends without its last chunks after this many content chunks (a dropped connection)
    drop_after_chunks: int | None = None
    #: after this many requests, requests wait for `release` (a test stops a run halfway)
    pause_after: int | None = None
    paused: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    requests: int = 0
    #: the last request bodies and headers, newest last, for tests (what reached the upstream)
    seen: list[dict[str, Any]] = field(default_factory=list)


class DroppedConnection(Exception):
    """Raised inside a streamed answer: uvicorn closes the connection without ending the stream."""


def _error(status: int, message: str, *, param: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "invalid_request_error", "param": param,
                                   "code": None}}, status_code=status)  # fmt: skip


def chat_router(chat: ChatSettings, *, lock: threading.RLock, new_id: Callable[[str, str], str],
                clock: Callable[[], float]) -> APIRouter:  # fmt: skip
    r = APIRouter()

    def answer_for(model: str, prompt: str) -> str:
        known = int(hashlib.sha256(f"{model}:{prompt}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        answer = chat.answers.get(prompt) if known < chat.accuracy.get(model, 1.0) else None
        return answer or "I am not sure."

    def arrive(body: dict[str, Any], headers: dict[str, str]) -> None:
        """Counts the request and holds it where a test asked for a pause."""
        with lock:
            chat.requests += 1
            chat.seen = [*chat.seen[-99:], {"body": body, "headers": headers}]
            pause = chat.pause_after is not None and chat.requests > chat.pause_after
        if pause:
            chat.paused.set()
            chat.release.wait(timeout=60)

    def usage(prompt_tokens: int, answer: str) -> dict[str, int]:
        completion = tokens.count_text(answer, tokens.get_encoding("o200k_base"))
        return {"prompt_tokens": prompt_tokens, "completion_tokens": completion,
                "total_tokens": prompt_tokens + completion}  # fmt: skip

    async def answer(body: dict[str, Any], headers: dict[str, str], *, prompt: str, prompt_tokens: int,
                     chunk: Callable[[str, str | None], dict[str, Any]], whole: Callable[[str], dict[str, Any]],
                     ) -> Any:  # fmt: skip
        if chat.pause_after is None:  # nothing can block: no hop to the thread pool (benchmarks call this a lot)
            arrive(body, headers)
        else:
            await run_in_threadpool(arrive, body, headers)
        if chat.delay:
            await asyncio.sleep(chat.delay)
        text = answer_for(str(body["model"]), prompt)
        used = usage(prompt_tokens, text)
        if not body.get("stream"):
            return JSONResponse(whole(text) | {"usage": used})  # as it is: no encoder pass over a plain dict
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        async def events() -> AsyncIterator[bytes]:
            pieces = _PIECES.findall(text) or [""]
            for n, piece in enumerate(pieces):
                if chat.drop_after_chunks is not None and n >= chat.drop_after_chunks:
                    raise DroppedConnection(f"dropped after {n} chunks")
                if n and chat.chunk_interval:
                    await asyncio.sleep(chat.chunk_interval)
                yield _sse(chunk(piece, None) | ({"usage": None} if include_usage else {}))
            yield _sse(chunk("", "stop") | ({"usage": None} if include_usage else {}))
            if include_usage:
                yield _sse(chunk("", None) | {"choices": [], "usage": used})
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    @r.post("/chat/completions")
    async def chat_completions(body: dict[str, Any], request: Request) -> Any:
        model, messages = body.get("model"), body.get("messages")
        if not isinstance(model, str) or not isinstance(messages, list) or not messages:
            return _error(400, "model and messages are required.", param="messages")
        call_id, created = new_id("chatcmpl-", model), int(clock())
        first = [True]

        def chunk(piece: str, finish: str | None) -> dict[str, Any]:
            delta: dict[str, Any] = {"content": piece} if piece or finish is None else {}
            if first[0]:
                delta, first[0] = {"role": "assistant"} | delta, False
            return {"id": call_id, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}  # fmt: skip

        def whole(text: str) -> dict[str, Any]:
            return {"id": call_id, "object": "chat.completion", "created": created, "model": model,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                 "finish_reason": "stop"}]}  # fmt: skip

        prompt_tokens = tokens.count_chat(messages, tokens.get_encoding("o200k_base"))
        return await answer(body, dict(request.headers), prompt=str(messages[-1].get("content", "")),
                            prompt_tokens=prompt_tokens,
                            chunk=chunk, whole=whole)  # fmt: skip

    @r.post("/completions")
    async def completions(body: dict[str, Any], request: Request) -> Any:
        model, prompt = body.get("model"), body.get("prompt")
        if not isinstance(model, str) or not isinstance(prompt, str):
            return _error(400, "model and prompt (a string) are required.", param="prompt")
        call_id, created = new_id("cmpl-", model), int(clock())

        def chunk(piece: str, finish: str | None) -> dict[str, Any]:
            return {"id": call_id, "object": "text_completion", "created": created, "model": model,
                    "choices": [{"index": 0, "text": piece, "logprobs": None, "finish_reason": finish}]}  # fmt: skip

        def whole(text: str) -> dict[str, Any]:
            return chunk(text, "stop")

        prompt_tokens = tokens.count_text(prompt, tokens.get_encoding("o200k_base"))
        return await answer(body, dict(request.headers), prompt=prompt, prompt_tokens=prompt_tokens, chunk=chunk,
                            whole=whole)  # fmt: skip

    return r


def _sse(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"
