"""The sandbox's model calls answer the official `openai` SDK as OpenAI's API does: buffered and
streamed, with usage where asked for, and with the faults the gateway's tests need."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import httpx2
import openai
import pytest

from sandbox.server import SandboxServer
from tests.support.openai_sandbox import Fault

PROMPT = "How do I update the billing address?"
ANSWER = "Open Account, then Billing, and edit the address; it applies at once."
MESSAGES = [{"role": "user", "content": PROMPT}]


@pytest.fixture
def upstream() -> Iterator[SandboxServer]:
    with SandboxServer() as server:
        server.state.chat.answers = {PROMPT: ANSWER}
        yield server


def client(server: SandboxServer, *, retries: int = 0) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="sk-upstream-key", max_retries=retries)


def test_a_streamed_answer_is_the_buffered_one_in_chunks_with_the_same_usage(upstream: SandboxServer) -> None:
    c = client(upstream)
    whole = c.chat.completions.create(model="support-bot", messages=MESSAGES)
    chunks = list(c.chat.completions.create(model="support-bot", messages=MESSAGES, stream=True,
                                            stream_options={"include_usage": True}))  # fmt: skip
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert whole.choices[0].message.content == text == ANSWER
    assert len([ch for ch in chunks if ch.choices and ch.choices[0].delta.content]) > 5  # cut into pieces
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == "stop"
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None and whole.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (whole.usage.prompt_tokens,
                                                                        whole.usage.completion_tokens)
    assert all(ch.usage is None for ch in chunks[:-1])


def test_a_stream_carries_usage_only_when_asked_for_it(upstream: SandboxServer) -> None:
    chunks = list(client(upstream).chat.completions.create(model="support-bot", messages=MESSAGES, stream=True))
    assert chunks and all(ch.usage is None and ch.choices for ch in chunks)


def test_the_legacy_completions_answer_buffered_and_streamed(upstream: SandboxServer) -> None:
    c = client(upstream)
    whole = c.completions.create(model="support-bot", prompt=PROMPT)
    streamed = list(c.completions.create(model="support-bot", prompt=PROMPT, stream=True,
                                         stream_options={"include_usage": True}))  # fmt: skip
    assert whole.choices[0].text == "".join(ch.choices[0].text for ch in streamed if ch.choices) == ANSWER
    assert whole.usage is not None and streamed[-1].usage == whole.usage


def test_a_dropped_stream_ends_without_its_last_chunks_and_the_sdk_sees_the_break(upstream: SandboxServer) -> None:
    upstream.state.chat.drop_after_chunks = 3
    got: list[str] = []
    with pytest.raises((openai.APIError, httpx.HTTPError, httpx2.HTTPError)):
        for ch in client(upstream).chat.completions.create(model="support-bot", messages=MESSAGES, stream=True):
            got.append(ch.choices[0].delta.content or "")
    assert "".join(got) != ANSWER and len(got) == 3


def test_a_queued_429_says_when_to_retry_and_the_next_call_is_answered(upstream: SandboxServer) -> None:
    upstream.state.faults.append(Fault(429, "POST", "/chat/completions", 1, retry_after=2))
    with pytest.raises(openai.RateLimitError) as limited:
        client(upstream).chat.completions.create(model="support-bot", messages=MESSAGES)
    assert limited.value.response.headers["retry-after"] == "2"
    answered = client(upstream).chat.completions.create(model="support-bot", messages=MESSAGES)
    assert answered.choices[0].message.content == ANSWER


def test_the_upstream_keeps_what_each_call_sent_it(upstream: SandboxServer) -> None:
    client(upstream).chat.completions.create(model="support-bot", messages=MESSAGES, user="u-7")
    [seen] = upstream.state.chat.seen
    assert seen["body"]["user"] == "u-7" and seen["headers"]["authorization"] == "Bearer sk-upstream-key"
