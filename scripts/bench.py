"""`make bench`: our NLU pipeline beside a plain reference one, same data, same run.

For each pipeline: NLU training time, model size, parse latency p50/p95 over
the held-out test file (in-process, after a warm-up), intent accuracy and
macro-F1 on full labels (as scripts/eval_nlu.py scores them). Prints a table
and writes results/bench_nlu.json. Numbers, not assertions: nothing here fails
a build.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, List, Sequence, Tuple

from scripts.eval_nlu import _load_examples, full_label, macro_f1, score

ROOT = Path(__file__).resolve().parent.parent
RASA = Path(sys.executable).with_name("rasa")
TEST_DATA = ROOT / "tests" / "nlu_test"
OUT = ROOT / "results" / "bench_nlu.json"

# The plain reference: jieba without our dictionary, word + char_wb 1-4 counts,
# DIET 100 epochs; no normaliser, no spaCy, no cue features, no fallback.
REFERENCE_CONFIG = """
recipe: default.v1
language: zh
pipeline:
  - name: JiebaTokenizer
  - name: CountVectorsFeaturizer
  - name: CountVectorsFeaturizer
    analyzer: char_wb
    min_ngram: 1
    max_ngram: 4
  - name: DIETClassifier
    epochs: 100
    random_seed: 42
  - name: ResponseSelector
    retrieval_intent: faq
    epochs: 100
    random_seed: 42
policies: []
"""


@dataclass
class Row:
    """One pipeline's figures."""

    pipeline: str
    train_s: float
    model_mb: float
    parse_p50_ms: float
    parse_p95_ms: float
    accuracy: float
    macro_f1: float


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(fraction * len(ordered)) - 1))
    return ordered[index]


def train(config: Path, out: Path, name: str) -> float:
    """Train an NLU model; returns seconds."""
    started = time.monotonic()
    subprocess.run(
        [str(RASA), "train", "nlu", "--config", str(config), "--nlu", "data/nlu",
         "--out", str(out), "--fixed-model-name", name],
        cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return time.monotonic() - started


async def measure(
    model: Path, examples: List[Tuple[str, str]]
) -> Tuple[List[float], List[str]]:
    """Parse every example once after a warm-up; latencies in ms and labels."""
    from rasa.core.agent import Agent

    agent = Agent.load(str(model))
    for text, _ in examples[:20]:
        await agent.parse_message(text)
    latencies, labels = [], []
    for text, _ in examples:
        started = time.perf_counter()
        parse = await agent.parse_message(text)
        latencies.append((time.perf_counter() - started) * 1000)
        labels.append(full_label(parse))
    return latencies, labels


def row(name: str, model: Path, train_s: float, examples: List[Tuple[str, str]]) -> Row:
    """Measure one trained model."""
    latencies, labels = asyncio.run(measure(model, examples))
    expected = [label for _, label in examples]
    pairs = list(zip(expected, labels, strict=True))
    return Row(
        pipeline=name,
        train_s=round(train_s, 1),
        model_mb=round(model.stat().st_size / 1e6, 2),
        parse_p50_ms=round(statistics.median(latencies), 1),
        parse_p95_ms=round(percentile(latencies, 0.95), 1),
        accuracy=round(sum(e == p for e, p in pairs) / len(pairs), 4),
        macro_f1=round(macro_f1(score(pairs)), 4),
    )


def table(rows: Sequence[Row]) -> str:
    """Fixed-width table."""
    header = ["pipeline", "train s", "model MB", "parse p50 ms", "parse p95 ms",
              "accuracy", "macro-F1"]  # fmt: skip
    lines = [" | ".join(header)]
    for r in rows:
        values: List[Any] = list(asdict(r).values())
        lines.append(" | ".join(str(v) for v in values))
    return "\n".join(lines)


def main() -> int:
    """Train both pipelines, measure, print."""
    examples = _load_examples(TEST_DATA)
    rows: List[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        reference = work / "reference.yml"
        reference.write_text(REFERENCE_CONFIG, encoding="utf-8")
        for name, config in (("ours", ROOT / "config.yml"), ("reference", reference)):
            seconds = train(config, work, name)
            rows.append(row(name, work / f"{name}.tar.gz", seconds, examples))
    full_model = ROOT / "models" / "jiebei.tar.gz"
    print(table(rows))
    print(f"\nheld-out examples: {len(examples)}; full model (NLU + dialogue): "
          f"{full_model.stat().st_size / 1e6:.1f} MB")  # fmt: skip
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps([asdict(r) for r in rows], indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
