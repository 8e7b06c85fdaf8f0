"""Score the trained model on the held-out NLU test data, per full label.

`rasa test nlu` reports the top-level intent (all FAQ questions count as `faq`)
and the response selector separately. Users care about the combined answer, so
this script scores the *full* label: the intent, or for `faq` the sub-intent the
response selector picked (`faq/jiebei_repayment`). It prints the per-label
table and exits 1 when macro-F1 is below ``--min-f1``.

A message the FallbackClassifier sends to `nlu_fallback` counts as wrong: the
user gets a "did you mean" question instead of the answer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

FALLBACK = "nlu_fallback"
# The labels the real-data held-out set is about (shared/docs/intents.md): the
# general conversation labels (greet, affirm, ...) are reported, not gated.
DOMAIN_LABELS = frozenset(
    {
        "jiebei_entry_missing", "jiebei_cannot_open", "jiebei_closed",
        "jiebei_cannot_borrow", "jiebei_quota", "out_of_scope",
        *(
            f"faq/{name}"
            for name in (
                "jiebei_repayment", "jiebei_early_repayment", "jiebei_term",
                "jiebei_overdue", "jiebei_interest", "jiebei_disbursement",
                "jiebei_wangshangdai", "jiebei_vs_huabei", "jiebei_self_close",
                "credit_score", "account_identity", "jiebei_how_to_borrow",
                "jiebei_records",
            )
        ),
    }
)  # fmt: skip
RETRIEVAL_INTENT = "faq"


@dataclass(frozen=True)
class LabelScore:
    """Precision, recall and F1 of one label."""

    label: str
    precision: float
    recall: float
    f1: float
    support: int


def full_label(parse: Dict[str, Any]) -> str:
    """The label the bot acts on: the intent, or the FAQ sub-intent."""
    name = str(parse.get("intent", {}).get("name") or "")
    if name == RETRIEVAL_INTENT:
        selected = parse.get("response_selector", {}).get(RETRIEVAL_INTENT, {})
        key = selected.get("response", {}).get("intent_response_key")
        return str(key or name)
    return name


def top_label(parse: Dict[str, Any]) -> str:
    """The classifier's best label before the FallbackClassifier steps in."""
    for intent in parse.get("intent_ranking", []):
        if intent.get("name") != FALLBACK:
            return full_label({**parse, "intent": intent})
    return full_label(parse)


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


def format_table(scores: Sequence[LabelScore]) -> str:
    """A fixed-width table, one row a label."""
    width = max([len(s.label) for s in scores] + [5])
    lines = [f"{'label':<{width}}  precision  recall     f1  support"]
    for s in scores:
        lines.append(
            f"{s.label:<{width}}  {s.precision:9.3f}  {s.recall:6.3f}  "
            f"{s.f1:5.3f}  {s.support:7d}"
        )
    return "\n".join(lines)


async def _predict(model: Path, texts: Sequence[str]) -> List[Dict[str, Any]]:
    from rasa.core.agent import Agent

    agent = Agent.load(str(model))
    return [await agent.parse_message(text) for text in texts]


def _load_examples(data: Path) -> List[Tuple[str, str]]:
    from rasa.shared.nlu.training_data.loading import load_data

    training_data = load_data(str(data))
    return [
        (example.get("text"), example.get_full_intent())
        for example in training_data.intent_examples
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Evaluate and gate."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("results/nlu_eval.json"))
    parser.add_argument("--min-f1", type=float, default=0.95)
    args = parser.parse_args(argv)
    if not args.model.exists():
        print(f"eval_nlu: no model at {args.model}: run `make train`", file=sys.stderr)
        return 2

    examples = _load_examples(args.data)
    parses = asyncio.run(_predict(args.model, [text for text, _ in examples]))
    predicted = [full_label(parse) for parse in parses]
    expected_labels = [label for _, label in examples]
    pairs = list(zip(expected_labels, predicted, strict=True))
    scores = score(pairs)
    overall = macro_f1(scores)
    result = macro_f1([s for s in scores if s.label in DOMAIN_LABELS])
    errors = [
        {"text": text, "expected": expected, "predicted": got}
        for (text, expected), got in zip(examples, predicted, strict=True)
        if expected != got
    ]
    fallbacks = sum(1 for got in predicted if got == FALLBACK)
    top_labels = [top_label(parse) for parse in parses]
    top_only = macro_f1(score(list(zip(expected_labels, top_labels, strict=True))))

    print(format_table(scores))
    print(
        f"\nexamples: {len(pairs)}  errors: {len(errors)}  "
        f"sent to fallback: {fallbacks}\n"
        f"macro-F1, all {len(scores)} labels: {overall:.4f}\n"
        f"macro-F1, the {len(DOMAIN_LABELS)} domain labels: {result:.4f} "
        f"(gate {args.min_f1})\n"
        f"macro-F1 of the classifier's top label, ignoring fallback: {top_only:.4f}"
    )
    for error in errors:
        print(
            f"  ✗ {error['text']}  expected {error['expected']}, "
            f"got {error['predicted']}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "macro_f1_domain": result,
                "macro_f1_all": overall,
                "labels": [asdict(s) for s in scores],
                "errors": errors,
            },
            ensure_ascii=False,
            indent=2,
        ),
        encoding="utf-8",
    )
    if result < args.min_f1:
        print(f"FAIL: domain macro-F1 {result:.4f} < {args.min_f1}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
