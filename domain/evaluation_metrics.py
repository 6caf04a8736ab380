"""Evaluation metrics as pure functions: matching, classification, generation, latency, cost, and the
paired comparison of two models on the same test set.

BLEU and ROUGE-L come from sacrebleu and rouge-score (the reference implementations), not from
code of our own; classification is checked against scikit-learn and McNemar against statsmodels.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from domain.errors import InvalidInput
from domain.statistics import stats, wilson_interval

MODES = ("exact", "substring", "classification", "bleu", "rouge")
_PUNCTUATION = re.compile(f"[{re.escape(string.punctuation)}]")


@dataclass(frozen=True)
class Normalisation:
    case: bool = False
    whitespace: bool = False
    punctuation: bool = False

    def apply(self, text: str) -> str:
        if self.case:
            text = text.casefold()
        if self.punctuation:
            text = _PUNCTUATION.sub("", text)
        if self.whitespace:
            text = " ".join(text.split())
        return text


def check_pairs(predictions: Sequence[str], references: Sequence[str]) -> None:
    if len(predictions) != len(references):
        raise InvalidInput(f"{len(predictions)} predictions but {len(references)} references: every prediction "
                           "needs its reference, in the same order.")  # fmt: skip
    if not predictions:
        raise InvalidInput("No predictions to evaluate: give at least one prediction with its reference.")


def exact_matches(predictions: Sequence[str], references: Sequence[str], norm: Normalisation) -> list[bool]:
    check_pairs(predictions, references)
    return [norm.apply(p) == norm.apply(r) for p, r in zip(predictions, references, strict=True)]


def prediction_in_reference(predictions: Sequence[str], references: Sequence[str], norm: Normalisation) -> list[bool]:
    """The seed's substring rule: the reference contains the prediction."""
    check_pairs(predictions, references)
    return [norm.apply(p) in norm.apply(r) for p, r in zip(predictions, references, strict=True)]


def reference_in_prediction(predictions: Sequence[str], references: Sequence[str], norm: Normalisation) -> list[bool]:
    """The reverse: the prediction contains the reference (a long answer that includes the expected one)."""
    check_pairs(predictions, references)
    return [norm.apply(r) in norm.apply(p) for p, r in zip(predictions, references, strict=True)]


@dataclass(frozen=True)
class Accuracy:
    correct: int
    n: int
    accuracy: float
    ci_low: float
    ci_high: float


def accuracy(correct: Sequence[bool]) -> Accuracy:
    n, k = len(correct), sum(bool(c) for c in correct)
    interval = wilson_interval(k, n) or (math.nan, math.nan)
    return Accuracy(k, n, k / n if n else math.nan, interval[0], interval[1])


def classification_report(labels: Sequence[str], predicted: Sequence[str]) -> dict[str, object]:
    """Per-class precision, recall, F1 and support, their macro means, and micro scores (scikit-learn's
    definitions: a class never predicted has precision 0, one never true has recall 0)."""
    check_pairs(predicted, labels)
    classes = sorted(set(labels) | set(predicted))
    tp = Counter(t for t, p in zip(labels, predicted, strict=True) if t == p)
    predicted_n, true_n = Counter(predicted), Counter(labels)

    def scores(tp_: int, pred_: int, true_: int) -> tuple[float, float, float]:
        precision = tp_ / pred_ if pred_ else 0.0
        recall = tp_ / true_ if true_ else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return precision, recall, f1

    per_class = {}
    for c in classes:
        p, r, f = scores(tp[c], predicted_n[c], true_n[c])
        per_class[c] = {"precision": p, "recall": r, "f1": f, "support": true_n[c]}
    macro = {k: sum(v[k] for v in per_class.values()) / len(classes) for k in ("precision", "recall", "f1")}
    p, r, f = scores(sum(tp.values()), len(predicted), len(labels))
    return {"per_class": per_class, "macro": macro, "micro": {"precision": p, "recall": r, "f1": f}}


def bleu(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU (0-100) by sacrebleu with its defaults (13a tokenisation, exponential smoothing)."""
    import sacrebleu

    check_pairs(predictions, references)
    return float(sacrebleu.corpus_bleu(list(predictions), [list(references)]).score)


def rouge_l(predictions: Sequence[str], references: Sequence[str]) -> list[float]:
    """ROUGE-L F-measure per pair, by rouge-score (with its stemmer)."""
    from rouge_score import rouge_scorer

    check_pairs(predictions, references)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return [scorer.score(r, p)["rougeL"].fmeasure for p, r in zip(predictions, references, strict=True)]


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between order statistics (numpy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency_summary(latencies_ms: Sequence[float]) -> dict[str, float]:
    values = [float(v) for v in latencies_ms]
    mean = sum(values) / len(values) if values else math.nan
    return {"mean_ms": mean, "p50_ms": percentile(values, 50), "p95_ms": percentile(values, 95)}


def cost_per_inference(costs: Sequence[Decimal]) -> Decimal | None:
    return sum(costs, Decimal(0)) / len(costs) if costs else None


@dataclass(frozen=True)
class McNemar:
    both_correct: int
    only_base: int  # b: base right, candidate wrong
    only_candidate: int  # c: candidate right, base wrong
    both_wrong: int
    p_value: float


def mcnemar_exact(base: Sequence[bool], candidate: Sequence[bool]) -> McNemar:
    """McNemar's exact test on paired correctness: a two-sided binomial test on the discordant pairs."""
    if len(base) != len(candidate):
        raise InvalidInput(f"The two runs answered {len(base)} and {len(candidate)} examples: a paired test needs "
                           "both models' answers to the same examples.")  # fmt: skip
    pairs = Counter(zip(map(bool, base), map(bool, candidate), strict=True))
    b, c = pairs[(True, False)], pairs[(False, True)]
    p = 1.0 if b + c == 0 else min(1.0, 2 * float(stats.binom.cdf(min(b, c), b + c, 0.5)))
    return McNemar(pairs[(True, True)], b, c, pairs[(False, False)], p)
