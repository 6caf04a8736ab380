"""Exact token counts, offline: tiktoken with its encoding files brought by the installation.

tiktoken downloads `o200k_base` and `cl100k_base` on first use, which fails
without internet. The `bpe-openai` package on PyPI bundles OpenAI's original
files (gzipped); we unpack them once into the cache directory tiktoken reads
(TIKTOKEN_CACHE_DIR, under the name tiktoken gives each download) and check
them against the SHA-256 tiktoken itself expects, so tiktoken never goes online.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import tiktoken

from domain.errors import InvalidInput

BLOB = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"
#: the hashes tiktoken checks (tiktoken_ext/openai_public.py)
EXPECTED_SHA256 = {
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
}
#: base-model name prefixes per encoding, most specific first (gpt-4o before gpt-4)
ENCODING_BY_PREFIX = (
    ("gpt-4o", "o200k_base"),
    ("chatgpt-4o", "o200k_base"),
    ("gpt-4.1", "o200k_base"),
    ("gpt-4.5", "o200k_base"),
    ("gpt-5", "o200k_base"),
    ("o1", "o200k_base"),
    ("o3", "o200k_base"),
    ("o4", "o200k_base"),
    ("gpt-3.5", "cl100k_base"),
    ("gpt-35", "cl100k_base"),
    ("gpt-4", "cl100k_base"),
)
#: OpenAI cookbook, "How to count tokens with tiktoken": every message costs 3 tokens beyond its
#: content, a name 1 more, and every reply is primed with 3 (<|start|>assistant<|message|>)
TOKENS_PER_MESSAGE, TOKENS_PER_NAME, REPLY_PRIMING = 3, 1, 3

_lock = threading.Lock()
_ready: set[Path] = set()


def cache_dir() -> Path:
    configured = os.environ.get("TIKTOKEN_CACHE_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "ft-lifecycle" / "tiktoken"


def _bundled_data_dir() -> Path:
    """bpe-openai's data folder, found without importing the package: its import builds
    tokenizers for every encoding, seconds of work we do not need."""
    spec = importlib.util.find_spec("bpe_openai")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the bpe-openai package (which bundles the encoding files) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def install_encodings(directory: Path | None = None) -> Path:
    """Unpacks the bundled encoding files where tiktoken looks for its cache; idempotent."""
    directory = directory or cache_dir()
    with _lock:
        if directory in _ready:
            return directory
        directory.mkdir(parents=True, exist_ok=True)
        data_files = _bundled_data_dir()
        for name, expected in EXPECTED_SHA256.items():
            target = directory / hashlib.sha1(BLOB.format(name).encode()).hexdigest()
            if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == expected:
                continue
            data = gzip.decompress((data_files / f"{name}.tiktoken.gz").read_bytes())
            if hashlib.sha256(data).hexdigest() != expected:
                raise RuntimeError(f"the bundled {name} file does not match tiktoken's expected hash")
            partial = target.with_suffix(f".{os.getpid()}.tmp")
            partial.write_bytes(data)
            partial.replace(target)  # atomic: a concurrent reader sees the whole file or none
        os.environ["TIKTOKEN_CACHE_DIR"] = str(directory)
        _ready.add(directory)
    return directory


def encoding_name_for(model: str) -> str:
    """The encoding of a model, fine-tunes included: `ft:gpt-4o-mini-2024-07-18:org::id` is
    counted as its base model (tiktoken's own lookup maps `ft:` names wrongly)."""
    base = model.split(":")[1] if model.startswith("ft:") and model.count(":") >= 1 else model
    for prefix, encoding in ENCODING_BY_PREFIX:
        if base.startswith(prefix):
            return encoding
    raise InvalidInput(
        f"No known tokenizer for model {model!r}: token counts cover OpenAI's gpt-4o, gpt-4.1, o-series "
        "(o200k_base) and gpt-3.5/gpt-4 (cl100k_base) models."
    )


def get_encoding(name: str) -> tiktoken.Encoding:
    install_encodings()
    return tiktoken.get_encoding(name)


def count_text(text: str, encoding: tiktoken.Encoding) -> int:
    # Special-token text in user content is counted as ordinary text, as the API does for content.
    return len(encoding.encode(text, disallowed_special=()))


def count_chat(messages: Iterable[Mapping[str, Any]], encoding: tiktoken.Encoding) -> int:
    """Tokens of a chat example as OpenAI bills a prompt, per the cookbook's rule."""
    total = REPLY_PRIMING
    for message in messages:
        total += TOKENS_PER_MESSAGE
        for key, value in message.items():
            if isinstance(value, str):
                total += count_text(value, encoding)
                if key == "name":
                    total += TOKENS_PER_NAME
    return total


class ChatTokens:
    """Token counting as the job planner asks for it (application/job_kinds.py's TokenCounting)."""

    @staticmethod
    def encoding_for(model: str) -> str:
        return encoding_name_for(model)

    @staticmethod
    def counter(encoding: str) -> Callable[[Any], int]:
        found = get_encoding(encoding)
        return lambda messages: count_chat(messages, found)


def estimate_call(model: str, request: Mapping[str, Any], answer: str) -> tuple[int, int]:
    """A call's input and output tokens, counted when the upstream sent no usage: the model's own
    tokenizer where tiktoken knows it, else o200k_base (an estimate either way; the gateway marks it)."""
    try:
        encoding = get_encoding(encoding_name_for(model))
    except InvalidInput:
        encoding = get_encoding("o200k_base")
    messages, prompt = request.get("messages"), request.get("prompt")
    if isinstance(messages, list):
        prompt_tokens = count_chat([m for m in messages if isinstance(m, Mapping)], encoding)
    elif isinstance(prompt, str):
        prompt_tokens = count_text(prompt, encoding)
    elif isinstance(prompt, list):
        prompt_tokens = sum(count_text(p, encoding) for p in prompt if isinstance(p, str))
    else:
        prompt_tokens = 0
    return prompt_tokens, count_text(answer, encoding)
