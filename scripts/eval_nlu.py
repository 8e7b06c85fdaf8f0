"""Score a trained model on a labelled NLU file: accuracy, F1, calibration, speed.

Every message goes through the whole NLU pipeline of the model (as
``/model/parse`` does). Two readings of each parse:

- the **label**: the classifier's best full label before the FallbackClassifier
  steps in (the intent, or for ``faq`` the sub-intent: ``faq/jiebei_repayment``);
  accuracy and F1 are about it;
- **fallback**: whether the FallbackClassifier sent the message to
  ``nlu_fallback`` (the user gets "did you mean" buttons instead of an answer).

Calibration is the point of the fallback: of the wrong labels, the share the
fallback catches; of the right ones, the share answered directly.

Exit 1 when a ``--min-*`` gate is missed (``make nlu-test`` gates on the
development set, tests/nlu_dev/dev.yml).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

FALLBACK = "nlu_fallback"
RETRIEVAL_INTENT = "faq"
FAQ_LABELS = (
    "jiebei_repayment", "jiebei_early_repayment", "jiebei_term", "jiebei_overdue",
    "jiebei_interest", "jiebei_disbursement", "jiebei_wangshangdai",
    "jiebei_vs_huabei", "jiebei_self_close", "credit_score", "account_identity",
    "jiebei_how_to_borrow", "jiebei_records",
)  # fmt: skip
# The 19 labels of shared/docs/intents.md that real users' questions carry; the
# general conversation labels (greet, affirm, ...) are reported, not gated.
DOMAIN_LABELS = frozenset(
    {
        "jiebei_entry_missing", "jiebei_cannot_open", "jiebei_closed",
        "jiebei_cannot_borrow", "jiebei_quota", "out_of_scope",
        *(f"{RETRIEVAL_INTENT}/{name}" for name in FAQ_LABELS),
    }
)  # fmt: skip


@dataclass(frozen=True)
class LabelScore:
    """Precision, recall and F1 of one label."""

    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Parsed:
    """One message as the model read it."""

    text: str
    expected: str
    label: str
    confidence: float
    fallback: bool
    ms: float

    @property
    def right(self) -> bool:
        """The classifier's best label is the expected one."""
        return self.label == self.expected


def full_label(parse: Dict[str, Any]) -> str:
    """The label the bot acts on: the intent, or the FAQ sub-intent."""
    name = str(parse.get("intent", {}).get("name") or "")
    if name == RETRIEVAL_INTENT:
        selected = parse.get("response_selector", {}).get(RETRIEVAL_INTENT, {})
        key = selected.get("response", {}).get("intent_response_key")
        return str(key or name)
    return name


def top_label(parse: Dict[str, Any]) -> Tuple[str, float]:
    """The classifier's best label and its confidence, before any fallback.

    For ``faq`` the confidence is the intent's times the sub-intent's, the
    chance of the whole answer.
    """
    for intent in parse.get("intent_ranking", []):
        if intent.get("name") != FALLBACK:
            label = full_label({**parse, "intent": intent})
            confidence = float(intent.get("confidence", 0.0))
            if label.startswith(f"{RETRIEVAL_INTENT}/"):
                selected = parse["response_selector"][RETRIEVAL_INTENT]["response"]
                confidence *= float(selected.get("confidence", 1.0))
            return label, confidence
    return full_label(parse), float(parse.get("intent", {}).get("confidence", 0.0))


def score(pairs: Sequence[Tuple[str, str]]) -> List[LabelScore]:
    """Per-label scores over (expected, predicted) pairs, for expected labels."""
    labels = sorted({expected for expected, _ in pairs})
    scores = []
    for label in labels:
        tp = sum(1 for e, p in pairs if e == label and p == label)
        fp = sum(1 for e, p in pairs if e != label and p == label)
        fn = sum(1 for e, p in pairs if e == label and p != label)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
        scores.append(LabelScore(label, precision, recall, f1, tp + fn))
    return scores


def macro_f1(scores: Sequence[LabelScore]) -> float:
    """Unweighted mean F1 over labels."""
    return sum(s.f1 for s in scores) / len(scores) if scores else 0.0


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (0.0 for no values)."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = max(0, min(len(ordered) - 1, round(fraction * len(ordered)) - 1))
    return ordered[index]


def summarise(parsed: Sequence[Parsed]) -> Dict[str, Any]:
    """Every figure of a run, as one JSON-ready dict."""
    pairs = [(p.expected, p.label) for p in parsed]
    scores = score(pairs)
    domain = [s for s in scores if s.label in DOMAIN_LABELS]
    wrong = [p for p in parsed if not p.right]
    right = [p for p in parsed if p.right]
    confusions = Counter((p.expected, p.label) for p in wrong)
    # Reliability: within bins of confidence, how often the label is right.
    edges = (0.0, 0.3, 0.5, 0.7, 0.9, 1.01)
    bins = [
        {
            "confidence": f"{low:.1f}-{min(high, 1.0):.1f}",
            "messages": len(inside),
            "right": sum(p.right for p in inside),
        }
        for low, high in pairwise(edges)
        for inside in [[p for p in parsed if low <= p.confidence < high]]
    ]
    return {
        "messages": len(parsed),
        "accuracy": len(right) / len(parsed) if parsed else 0.0,
        "macro_f1_domain": macro_f1(domain),
        "macro_f1_all": macro_f1(scores),
        "min_label_f1_domain": min((s.f1 for s in domain), default=0.0),
        "labels": [asdict(s) for s in scores],
        "wrong_caught_by_fallback": (
            sum(p.fallback for p in wrong) / len(wrong) if wrong else 1.0
        ),
        "right_answered_directly": (
            sum(not p.fallback for p in right) / len(right) if right else 0.0
        ),
        "wrong_confident_0_95": (
            sum(p.confidence >= 0.95 for p in wrong) / len(wrong) if wrong else 0.0
        ),
        "sent_to_fallback": sum(p.fallback for p in parsed) / len(parsed)
        if parsed
        else 0.0,
        "reliability": bins,
        "confusions": [
            {"expected": e, "predicted": g, "count": n}
            for (e, g), n in confusions.most_common()
        ],
        "parse_ms_p50": statistics.median([p.ms for p in parsed]) if parsed else 0.0,
        "parse_ms_p95": percentile([p.ms for p in parsed], 0.95),
        "errors": [asdict(p) for p in wrong],
    }


def format_report(summary: Dict[str, Any], errors: bool = True) -> str:
    """The per-label table, the headline figures and (optionally) the errors."""
    labels = summary["labels"]
    width = max([len(s["label"]) for s in labels] + [5])
    lines = [f"{'label':<{width}}  precision  recall     f1  support"]
    for s in labels:
        mark = "" if s["label"] in DOMAIN_LABELS else "   (general)"
        lines.append(
            f"{s['label']:<{width}}  {s['precision']:9.3f}  {s['recall']:6.3f}  "
            f"{s['f1']:5.3f}  {s['support']:7d}{mark}"
        )
    lines += [
        "",
        f"messages {summary['messages']}  accuracy {summary['accuracy']:.3f}  "
        f"macro-F1 (domain labels) {summary['macro_f1_domain']:.3f}  "
        f"lowest domain label F1 {summary['min_label_f1_domain']:.3f}",
        f"fallback: catches {summary['wrong_caught_by_fallback']:.0%} of the wrong "
        f"labels, answers {summary['right_answered_directly']:.0%} of the right ones "
        f"directly; wrong with confidence >= 0.95: "
        f"{summary['wrong_confident_0_95']:.0%}",
        f"parse p50 {summary['parse_ms_p50']:.1f} ms, p95 "
        f"{summary['parse_ms_p95']:.1f} ms (in process)",
        "confidence  messages  right",
    ]
    for b in summary["reliability"]:
        share = b["right"] / b["messages"] if b["messages"] else 0.0
        lines.append(f"{b['confidence']:>10}  {b['messages']:8d}  {share:5.0%}")
    if errors:
        lines.append("errors (expected → label, confidence, [fallback]):")
        for e in summary["errors"]:
            flag = " [fallback]" if e["fallback"] else ""
            lines.append(
                f"  ✗ {e['text']}  {e['expected']} → {e['label']} "
                f"{e['confidence']:.2f}{flag}"
            )
    return "\n".join(lines)


def load_examples(data: Path) -> List[Tuple[str, str]]:
    """(text, full label) of every intent example in a Rasa NLU file or folder."""
    from rasa.shared.nlu.training_data.loading import load_data

    training_data = load_data(str(data))
    return [
        (example.get("text"), example.get_full_intent())
        for example in training_data.intent_examples
    ]


async def parse_all(model: Path, examples: Sequence[Tuple[str, str]]) -> List[Parsed]:
    """Parses each example with the model, after a warm-up."""
    import logging

    import structlog
    from rasa.core.agent import Agent

    # Rasa logs every parse at debug level through structlog: keep the report.
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING)
    )
    agent = Agent.load(str(model))
    for text, _ in examples[:20]:
        await agent.parse_message(text)
    parsed = []
    for text, expected in examples:
        start = time.perf_counter()
        parse = await agent.parse_message(text)
        ms = (time.perf_counter() - start) * 1000
        label, confidence = top_label(parse)
        fallback = parse.get("intent", {}).get("name") == FALLBACK
        parsed.append(Parsed(text, expected, label, confidence, fallback, ms))
    return parsed


def gate_failures(summary: Dict[str, Any], args: argparse.Namespace) -> List[str]:
    """Which of the requested minimums the summary misses."""
    checks = [
        ("accuracy", args.min_accuracy),
        ("macro_f1_domain", args.min_macro_f1),
        ("min_label_f1_domain", args.min_label_f1),
        ("wrong_caught_by_fallback", args.min_caught),
    ]
    return [
        f"{name} {summary[name]:.3f} < {minimum}"
        for name, minimum in checks
        if minimum is not None and summary[name] < minimum
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Evaluate and gate."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("results/nlu_eval.json"))
    parser.add_argument("--min-accuracy", type=float)
    parser.add_argument("--min-macro-f1", type=float)
    parser.add_argument("--min-label-f1", type=float)
    parser.add_argument("--min-caught", type=float)
    parser.add_argument("--quiet", action="store_true", help="no list of errors")
    args = parser.parse_args(argv)
    if not args.model.exists():
        print(f"eval_nlu: no model at {args.model}: run `make train`", file=sys.stderr)
        return 2

    summary = summarise(asyncio.run(parse_all(args.model, load_examples(args.data))))
    print(format_report(summary, errors=not args.quiet))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, ensure_ascii=False, indent=2), "utf-8")
    failures = gate_failures(summary, args)
    for failure in failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
