"""A training file checked against OpenAI's rules before it is uploaded, and its cost estimated.

The checks are the dataset builder's (domain/datasets.py): known roles,
non-empty content, an assistant message to learn from, the base model's token
limit per example, at least 10 examples. A file that breaks them is refused
here, with line numbers, instead of failing minutes later at the provider.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from domain.datasets import OPENAI_MIN, check_example, default_epochs, token_limit
from domain.job_specs import CostEstimate
from domain.pricing import PER_MILLION, Price

Counter = Callable[[list[dict[str, str]]], int]


@dataclass(frozen=True)
class FileCheck:
    examples: int
    tokens: int
    sha256: str
    problems: list[str] = field(default_factory=list)


def _dpo_messages(line: dict[str, Any]) -> list[dict[str, str]] | str:
    """The messages to count for a DPO example, or the reason it is malformed."""
    prompt = line.get("input")
    if not isinstance(prompt, dict) or not isinstance(prompt.get("messages"), list):
        return "a DPO example needs input.messages"
    outputs = []
    for key in ("preferred_output", "non_preferred_output"):
        value = line.get(key)
        if not isinstance(value, list) or not value or not all(isinstance(m, dict) for m in value):
            return f"a DPO example needs {key} (a list of assistant messages)"
        outputs += value
    return [*prompt["messages"], *outputs]


def check_training_file(data: bytes, *, base_model: str, method: str, count: Counter) -> FileCheck:
    """Every line is one example as JSON; problems are numbered by line (from 1)."""
    limit = token_limit(base_model)
    problems: list[str] = []
    examples = tokens = 0
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        return FileCheck(0, 0, hashlib.sha256(data).hexdigest(), [f"the file is not UTF-8 text (byte {e.start})"])
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except json.JSONDecodeError as e:
            problems.append(f"line {number} is not valid JSON ({e.msg}, column {e.colno})")
            continue
        if not isinstance(line, dict):
            problems.append(f"line {number} is not a JSON object")
            continue
        if method == "dpo":
            messages: Any = _dpo_messages(line)
            if isinstance(messages, str):
                problems.append(f"line {number}: {messages}")
                continue
        else:
            messages = line.get("messages")
            if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
                problems.append(f"line {number} has no `messages` list (chat format: system, user, assistant)")
                continue
        reason, n = check_example({"messages": messages}, count, limit)
        if reason is not None:
            problems.append(f"line {number}: {reason}")
            continue
        examples += 1
        tokens += n
    if examples < OPENAI_MIN and not problems:
        problems.append(f"it has {examples} example(s); OpenAI needs at least {OPENAI_MIN}")
    return FileCheck(examples, tokens, hashlib.sha256(data).hexdigest(), problems)


def estimate_cost(tokens: int, examples: int, n_epochs: int | None, price: Price | None) -> CostEstimate:
    """Tokens x epochs x the training price per 1M tokens (OpenAI bills trained tokens)."""
    epochs, source = (n_epochs, "given") if n_epochs is not None else (default_epochs(examples), "default rule")
    if price is None:
        return CostEstimate(tokens, epochs, source, None, None, None,
                            "no training price in the catalog for this model: set one with `ft-cli prices set`")
    if price.training_per_1m is None:
        return CostEstimate(tokens, epochs, source, None, price.pattern, None,
                            "this model is billed per training hour, so tokens give no estimate")  # fmt: skip
    total = Decimal(tokens) * epochs * price.training_per_1m / PER_MILLION
    return CostEstimate(tokens, epochs, source, price.training_per_1m, price.pattern, total)
