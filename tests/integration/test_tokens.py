"""Exact token counts with the network off: the encodings come with the installation."""

from __future__ import annotations

import pytest
import tiktoken
import tiktoken.load
import tiktoken.registry

from adapters import tokens
from domain.errors import InvalidInput

CORPUS = [
    "tiktoken is great!",
    "Привет, мир! Как дела?",
    "你好，世界。今日はいい天気ですね。",
    "مرحبا بالعالم",
    "def fib(n: int) -> int:\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
    "SELECT id, name FROM \"users\" WHERE email LIKE '%@example.com';",
    "Emoji: 🚀🔥 and accents: déjà vu, naïve, Zürich <|endoftext|>",
]


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """A fresh cache directory, and any download attempt fails loudly."""

    def no_network(blobpath: str) -> bytes:
        raise AssertionError(f"tiktoken tried to download {blobpath}")

    monkeypatch.setattr(tiktoken.load, "read_file", no_network)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "tiktoken"))
    monkeypatch.setattr(tokens, "_ready", set())
    saved = dict(tiktoken.registry.ENCODINGS)
    tiktoken.registry.ENCODINGS.clear()
    yield tmp_path / "tiktoken"
    tiktoken.registry.ENCODINGS.clear()
    tiktoken.registry.ENCODINGS.update(saved)


def test_both_encodings_load_without_the_network_and_give_the_published_token_ids(offline) -> None:
    # the token ids OpenAI's cookbook shows for this sentence
    assert tokens.get_encoding("cl100k_base").encode("tiktoken is great!") == [83, 1609, 5963, 374, 2294, 0]
    assert tokens.get_encoding("o200k_base").encode("tiktoken is great!") == [83, 8251, 2488, 382, 2212, 0]
    assert len(list(offline.iterdir())) == 2


@pytest.mark.parametrize("name", ["o200k_base", "cl100k_base"])
def test_counts_equal_tiktokens_own_encoding_on_multilingual_and_code_text(offline, name: str) -> None:
    encoding = tokens.get_encoding(name)
    reference = tiktoken.get_encoding(name)  # the same files, through tiktoken's own loader
    for text in CORPUS:
        assert tokens.count_text(text, encoding) == len(reference.encode(text, disallowed_special=()))
        assert tokens.count_text(text, encoding) > 0


def test_a_chat_example_counts_as_the_cookbook_says(offline) -> None:
    encoding = tokens.get_encoding("o200k_base")
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "name": "alice", "content": "Bonjour !"},
        {"role": "assistant", "content": "Bonjour, Alice."},
    ]
    content = sum(tokens.count_text(v, encoding) for m in messages for v in m.values())
    assert tokens.count_chat(messages, encoding) == content + 3 * 3 + 1 + 3


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o-mini-2024-07-18", "o200k_base"),
        ("ft:gpt-4o-mini-2024-07-18:acme:support:abc123", "o200k_base"),
        ("gpt-4.1-nano-2025-04-14", "o200k_base"),
        ("o4-mini-2025-04-16", "o200k_base"),
        ("ft:gpt-3.5-turbo-0125:acme::xyz", "cl100k_base"),
        ("gpt-4-0613", "cl100k_base"),
    ],
)
def test_the_encoding_follows_the_base_model_even_for_fine_tunes(model: str, encoding: str) -> None:
    assert tokens.encoding_name_for(model) == encoding


def test_an_unknown_model_has_no_tokenizer_and_says_which_do() -> None:
    with pytest.raises(InvalidInput, match="No known tokenizer for model 'llama3'"):
        tokens.encoding_name_for("llama3")
