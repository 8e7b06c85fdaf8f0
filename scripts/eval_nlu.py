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
    result = macro_f1(scores)
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
        f"sent to fallback: {fallbacks}  macro-F1: {result:.4f} "
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
                "macro_f1": result,
                "labels": [asdict(s) for s in scores],
                "errors": errors,
            },
            ensure_ascii=False,
            indent=2,
        ),
        encoding="utf-8",
    )
    if result < args.min_f1:
        print(f"FAIL: macro-F1 {result:.4f} < {args.min_f1}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
