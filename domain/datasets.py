"""Dataset builds: from collected examples to a validated, deduplicated, split training set.

A build is a pure function of the examples it is given (in example-id order), the
spec and a token counter, so the same examples always give the same split, bytes
and hash. Its event records the filters, every included id with its split, every
rejected example with the reason, the content hash and the statistics: the
lineage from a dataset to its examples.
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.errors import InvalidInput
from domain.examples import ROLES
from domain.ids import stable_id
from domain.pricing import PER_MILLION, Price
from domain.values import name_text, path_id, whole_number

#: seeds of random generators, as the jobs take them
MAX_SEED = 2**31 - 1
FORMATS = ("openai", "alpaca", "jsonl")
SPLITS = ("train", "test", "all")
MIN_PROMPT, MIN_RESPONSE = 10, 20  # characters after trimming (the seed's rules)
RECOMMENDED_MIN, OPENAI_MIN = 500, 10
DOMINANT_SHARE = 0.8
#: tokens one training example may hold, per base model family (OpenAI fine-tuning limits)
EXAMPLE_TOKEN_LIMITS = (
    ("gpt-4.1", 65_536), ("gpt-4o", 65_536), ("o4-mini", 65_536), ("gpt-3.5", 16_385), ("gpt-4", 8_192),
)  # fmt: skip
# OpenAI's default epochs rule (its fine-tuning data-preparation cookbook)
TARGET_EPOCHS, MIN_TARGET_EXAMPLES, MAX_TARGET_EXAMPLES, MIN_EPOCHS, MAX_EPOCHS = 3, 100, 25_000, 1, 25


def dataset_stream_id(dataset_id: str) -> UUID:
    return stable_id("dataset", dataset_id)


def token_limit(model: str) -> int | None:
    base = model.split(":")[1] if model.startswith("ft:") else model
    return next((limit for prefix, limit in EXAMPLE_TOKEN_LIMITS if base.startswith(prefix)), None)


def default_epochs(n_train: int) -> int:
    if n_train == 0:
        return TARGET_EPOCHS
    if n_train * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
        return min(MAX_EPOCHS, MIN_TARGET_EXAMPLES // n_train)
    if n_train * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
        return max(MIN_EPOCHS, MAX_TARGET_EXAMPLES // n_train)
    return TARGET_EPOCHS


@dataclass(frozen=True)
class BuildSpec:
    dataset_id: str | None = None
    min_rating: int | None = 4
    domain: str | None = None
    task_type: str | None = None
    source: str | None = None
    since: str | None = None  # stored UTC timestamps, inclusive
    until: str | None = None
    target_model: str = "gpt-4o-mini-2024-07-18"
    train_ratio: float = 0.8
    seed: int = 42

    @classmethod
    def validate(cls, **fields: Any) -> BuildSpec:
        defaults = {k: f.default for k, f in cls.__dataclass_fields__.items()}
        unknown = set(fields) - set(defaults)
        if unknown:
            raise InvalidInput(f"Unknown build settings: {', '.join(sorted(unknown))}.")
        values = defaults | {k: v for k, v in fields.items() if v is not None}
        if "min_rating" in fields and fields["min_rating"] is None:
            values["min_rating"] = 4
        if values["dataset_id"] is not None:
            path_id("dataset id", values["dataset_id"])  # it names the exported files
        for name in ("domain", "task_type", "source", "since", "until"):
            if values[name] is not None:
                values[name] = name_text(name, values[name])
        values["target_model"] = name_text("target_model", values["target_model"])
        rating = values["min_rating"]
        if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
            raise InvalidInput(f"min_rating must be a whole number from 1 to 5, got {rating!r}.")
        ratio = values["train_ratio"]
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio < 1:
            raise InvalidInput(f"train_ratio must be between 0 and 1 (0.8 keeps 80% for training), got {ratio!r}.")
        whole_number("seed", values["seed"], maximum=MAX_SEED)
        return cls(**{**values, "train_ratio": float(ratio)})

    @property
    def filters(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("min_rating", "domain", "task_type", "source", "since", "until")}


# ----------------------------------------------------------------- formats


def chat_messages(example: dict[str, Any]) -> list[dict[str, str]]:
    """The example as OpenAI chat messages: its own, or system + user + assistant."""
    if example.get("messages"):
        return [{k: m[k] for k in ("role", "content", "name") if k in m} for m in example["messages"]]
    messages = [{"role": "system", "content": example["system"]}] if example.get("system") else []
    return [*messages, {"role": "user", "content": example["prompt"]},
            {"role": "assistant", "content": example["response"]}]  # fmt: skip


def _alpaca(example: dict[str, Any]) -> dict[str, str]:
    messages = chat_messages(example)
    system = next((m["content"] for m in messages if m["role"] == "system"), "")
    user = [m["content"] for m in messages if m["role"] == "user"]
    assistant = [m["content"] for m in messages if m["role"] == "assistant"]
    return {"instruction": user[-1] if user else "", "input": system, "output": assistant[-1] if assistant else ""}


#: what an export keeps of an example: its content, not its rating (a rating may change later)
RAW_FIELDS = ("example_id", "prompt", "response", "system", "messages", "domain", "task_type", "source", "model",
              "at", "tags")  # fmt: skip


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=False)


def export_bytes(examples: Iterable[dict[str, Any]], fmt: str) -> bytes:
    """The same examples in the same order always give the same bytes."""
    if fmt == "openai":
        return "".join(_dumps({"messages": chat_messages(e)}) + "\n" for e in examples).encode()
    if fmt == "alpaca":
        return (json.dumps([_alpaca(e) for e in examples], ensure_ascii=False, indent=2) + "\n").encode()
    if fmt == "jsonl":
        return "".join(_dumps({k: e.get(k) for k in RAW_FIELDS}) + "\n" for e in examples).encode()
    raise InvalidInput(f"Unknown format {fmt!r}: use openai, alpaca or jsonl.")


# ------------------------------------------------------------------- build


def _normalised(text: str | None) -> str:
    return " ".join((text or "").lower().split())


def check_example(
    example: dict[str, Any], count: Callable[[list[dict[str, str]]], int], limit: int | None
) -> tuple[str | None, int]:
    """(reason to reject, or None; the example's tokens)."""
    if not example.get("messages"):
        if len((example.get("prompt") or "").strip()) < MIN_PROMPT:
            return f"prompt shorter than {MIN_PROMPT} characters", 0
        if len((example.get("response") or "").strip()) < MIN_RESPONSE:
            return f"response shorter than {MIN_RESPONSE} characters", 0
    messages = chat_messages(example)
    for i, m in enumerate(messages):
        if m.get("role") not in ROLES:
            return f"message {i} has unknown role {m.get('role')!r}", 0
        if not (m.get("content") or "").strip():
            return f"message {i} ({m['role']}) is empty", 0
    if not any(m["role"] == "assistant" for m in messages):
        return "no assistant message to learn from", 0
    tokens = count(messages)
    if limit is not None and tokens > limit:
        return f"{tokens:,} tokens, over the {limit:,}-token limit of an example", tokens
    return None, tokens


def in_train(example_id: str, seed: int, ratio: float) -> bool:
    """A deterministic coin: the same id, seed and ratio always land in the same split."""
    digest = hashlib.sha256(f"{seed}:{example_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < ratio


def _percentiles(values: list[int]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "p50": None, "p90": None, "p99": None, "max": None}
    ordered = sorted(values)

    def pct(q: float) -> float:  # nearest rank
        return float(ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))])

    return {"mean": statistics.fmean(ordered), "p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99),
            "max": float(ordered[-1])}  # fmt: skip


@dataclass(frozen=True)
class Build:
    dataset_id: str
    spec: BuildSpec
    train_ids: list[str]
    test_ids: list[str]
    rejected: list[dict[str, str]]
    content_hash: str
    stats: dict[str, Any]


def build_dataset(
    spec: BuildSpec,
    examples: Sequence[dict[str, Any]],
    count: Callable[[list[dict[str, str]]], int],
    training_prices: Sequence[Price] = (),
) -> Build:
    """Validates, deduplicates, splits and hashes `examples` (already filtered, in example-id order)."""
    limit = token_limit(spec.target_model)
    kept: list[tuple[dict[str, Any], int]] = []
    rejected: list[dict[str, str]] = []
    seen: dict[str, str] = {}
    for e in examples:
        reason, tokens = check_example(e, count, limit)
        if reason is None:
            messages = chat_messages(e)
            key = (
                _normalised(" ".join(m["content"] for m in messages if m["role"] == "user"))
                + "\x00"
                + _normalised(" ".join(m["content"] for m in messages if m["role"] == "assistant"))
            )
            if key in seen:
                reason = f"duplicate of {seen[key]} (same normalised prompt and response)"
            else:
                seen[key] = e["example_id"]
        if reason is not None:
            rejected.append({"example_id": e["example_id"], "reason": reason})
        else:
            kept.append((e, tokens))
    if not kept:
        raise InvalidInput(
            f"No example of the {len(examples)} matching the filters passed validation: "
            + "; ".join(f"{r['example_id']}: {r['reason']}" for r in rejected[:5])
        )
    train = [e for e, _ in kept if in_train(e["example_id"], spec.seed, spec.train_ratio)]
    test = [e for e, _ in kept if not in_train(e["example_id"], spec.seed, spec.train_ratio)]
    digest = hashlib.sha256()
    for split, items in (("train", train), ("test", test)):
        digest.update(split.encode() + b"\n" + export_bytes(items, "jsonl"))
    content_hash = digest.hexdigest()
    dataset_id = spec.dataset_id or f"ds-{content_hash[:12]}"
    tokens = [t for _, t in kept]
    train_tokens = sum(t for e, t in kept if in_train(e["example_id"], spec.seed, spec.train_ratio))
    epochs = default_epochs(len(train))
    stats: dict[str, Any] = {
        "examples": len(kept), "train": len(train), "test": len(test), "rejected": len(rejected),
        "by_domain": dict(Counter(e.get("domain") or "(none)" for e, _ in kept).most_common()),
        "by_task_type": dict(Counter(e.get("task_type") or "(none)" for e, _ in kept).most_common()),
        "by_rating": {str(k): v for k, v in sorted(Counter(e.get("rating") for e, _ in kept).items(), key=str)},
        "by_source": dict(Counter(e.get("source") for e, _ in kept).most_common()),
        "characters": _percentiles([sum(len(m["content"]) for m in chat_messages(e)) for e, _ in kept]),
        "tokens": _percentiles(tokens), "total_tokens": sum(tokens), "train_tokens": train_tokens,
        "token_limit": limit, "default_epochs": epochs,
        "estimated_training_cost": {
            p.pattern: str(Decimal(train_tokens) * epochs * p.training_per_1m / PER_MILLION)
            for p in training_prices if p.training_per_1m is not None
        },
    }  # fmt: skip
    warnings = []
    if len(train) < OPENAI_MIN:
        warnings.append(f"{len(train)} training examples: OpenAI rejects files with fewer than {OPENAI_MIN}")
    elif len(train) < RECOMMENDED_MIN:
        warnings.append(f"{len(train)} training examples: {RECOMMENDED_MIN}+ are recommended")
    over = sum(1 for r in rejected if "token limit" in r["reason"])
    if over:
        warnings.append(f"{over} example(s) over the {limit:,}-token limit were left out")
    top_domain, top_count = Counter(e.get("domain") or "(none)" for e, _ in kept).most_common(1)[0]
    if len(kept) >= 10 and top_count / len(kept) > DOMINANT_SHARE:
        warnings.append(f"domain {top_domain!r} makes up {top_count / len(kept):.0%} of the examples")
    stats["warnings"] = warnings
    return Build(dataset_id, spec, [e["example_id"] for e in train], [e["example_id"] for e in test], rejected,
                 content_hash, stats)  # fmt: skip


class Dataset(Aggregate):
    """One dataset build (one event): the lineage record from a dataset to its examples."""

    class Built(Aggregate.Created):
        dataset_id: str
        spec: dict[str, Any]
        train_ids: list[str]
        test_ids: list[str]
        rejected: list[dict[str, str]]
        content_hash: str
        stats: dict[str, Any]
        actor: str
        reason: str | None

    @staticmethod
    def create_id(dataset_id: str) -> UUID:
        return dataset_stream_id(dataset_id)

    @classmethod
    def record(cls, build: Build, *, actor: str, reason: str | None = None) -> Dataset:
        return cls._create(
            cls.Built, dataset_id=build.dataset_id, spec=asdict(build.spec), train_ids=build.train_ids,
            test_ids=build.test_ids, rejected=build.rejected, content_hash=build.content_hash, stats=build.stats,
            actor=actor, reason=reason,
        )  # fmt: skip

    def __init__(
        self, dataset_id: str, spec: dict[str, Any], train_ids: list[str], test_ids: list[str],
        rejected: list[dict[str, str]], content_hash: str, stats: dict[str, Any], actor: str, reason: str | None,
    ) -> None:  # fmt: skip
        self.dataset_id = dataset_id
        self.content_hash = content_hash
