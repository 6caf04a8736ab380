"""Chat completions at any OpenAI-compatible endpoint through the official `openai` SDK
(OpenAI, Azure, Ollama's /v1, vLLM), as live evaluation asks for them."""

from __future__ import annotations

import openai

from adapters.openai_jobs import scrub
from application.live_evaluations import ChatReply, EndpointFailed


class OpenAIChat:
    """The SDK retries 429s, 5xx and dropped connections with backoff (twice), then the call fails."""

    def __init__(self, base_url: str, api_key: str | None) -> None:
        self.api_key = api_key
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key or "not-needed", max_retries=2, timeout=60)

    def complete(self, model: str, messages: list[dict[str, str]]) -> ChatReply:
        try:
            reply = self.client.chat.completions.create(model=model, messages=messages)  # type: ignore[arg-type]
        except (openai.APIConnectionError, openai.APIStatusError) as e:
            raise EndpointFailed(f"{type(e).__name__}: {_short(scrub(str(e), self.api_key))}") from None
        usage = reply.usage
        return ChatReply(reply.choices[0].message.content or "", None if usage is None else usage.prompt_tokens,
                         None if usage is None else usage.completion_tokens)  # fmt: skip


def _short(text: str) -> str:
    return text if len(text) < 200 else text[:200] + "…"
