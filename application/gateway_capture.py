"""Capture: successful gateway calls turned into collected examples, sampled and redacted, per model.

Off by default. A model with a rule keeps `sample_rate` of its successful calls as examples with
`source: gateway`, whose example id is the call id, so the lineage runs call → example → dataset →
job → version. Before anything is stored, every message and the answer go through the redaction
rules: by default e-mail addresses, API keys and tokens, and long numbers (cards, phones, accounts);
a rule may give its own regular expressions instead (an empty list keeps the text as it is).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from domain.gateway_calls import GatewayCall

#: the default redactions: (pattern, replacement)
DEFAULT_REDACTIONS: tuple[tuple[str, str], ...] = (
    (r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}", "[EMAIL]"),
    (r"\b(?:sk|pk|rk|ak|tok|key|ghp|gho|xox[abpr])[-_][A-Za-z0-9_-]{8,}\b|\bAKIA[0-9A-Z]{16}\b"
     r"|\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\b", "[KEY]"),
    (r"(?<!\w)\+?\d(?:[ -]?\d){5,}(?!\w)", "[NUMBER]"),
)  # fmt: skip
REDACTED = "[REDACTED]"


@dataclass(frozen=True)
class CaptureRule:
    sample_rate: float
    #: compiled patterns with their replacement
    redactions: tuple[tuple[re.Pattern[str], str], ...]

    @classmethod
    def build(cls, sample_rate: float, redact: list[str] | None) -> CaptureRule:
        """`redact` None: the defaults; else each pattern's matches become [REDACTED]."""
        pairs = DEFAULT_REDACTIONS if redact is None else tuple((p, REDACTED) for p in redact)
        return cls(sample_rate, tuple((re.compile(p), r) for p, r in pairs))

    def redact(self, text: str) -> str:
        for pattern, replacement in self.redactions:
            text = pattern.sub(replacement, text)
        return text


@dataclass
class Capture:
    rules: Mapping[str, CaptureRule] = field(default_factory=dict)
    draw: Callable[[], float] = random.random

    def wants(self, call: GatewayCall) -> CaptureRule | None:
        """The rule that keeps this call, when the draw says so."""
        rule = self.rules.get(call.model)
        return rule if rule is not None and rule.sample_rate > 0 and self.draw() < rule.sample_rate else None


def example_of(call: GatewayCall, request: Mapping[str, Any], answer: str, rule: CaptureRule) -> dict[str, Any] | None:
    """The collected example of a captured call (chat messages and the answer, redacted); None when the
    call's request is not one an example can hold."""
    messages = request.get("messages")
    if isinstance(messages, list):
        turns = [{"role": m["role"], "content": rule.redact(m["content"])} for m in messages
                 if isinstance(m, dict) and isinstance(m.get("role"), str)
                 and isinstance(m.get("content"), str)]  # fmt: skip
        if len(turns) != len(messages):  # parts, images or tool calls: not a text chat
            return None
    elif isinstance(request.get("prompt"), str):
        turns = [{"role": "user", "content": rule.redact(request["prompt"])}]
    else:
        return None
    return {
        "example_id": call.id, "messages": [*turns, {"role": "assistant", "content": rule.redact(answer)}],
        "source": "gateway", "model": call.model, "at": call.at.isoformat(),
        "tags": [f"version:{call.version}", f"caller:{call.caller}"],
    }  # fmt: skip
