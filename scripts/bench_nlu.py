"""`make bench-nlu`: our NLU beside Rasa's reference pipeline and a plain linear model.

All three learn from the same data/nlu and are scored on the same two sets,
written like users and never trained on (tests/nlu_dev/): the development set
(writer A) and the second writer's set (writer B, never tuned on).

- **ours**: config.yml, trained from scratch with a fresh cache (the whole
  model, NLU and dialogue, as `make train` builds it);
- **reference**: Rasa's documented pipeline for Chinese (jieba without our
  dictionary, word + char_wb 1-4 CountVectors, DIET + ResponseSelector);
- **linear**: TF-IDF of character 1-4-grams and jieba words, LinearSVC, in
  process (no normaliser, no fallback).

Per system and set: accuracy, macro-F1 over the 19 domain labels, the lowest
label F1, the share of wrong labels the fallback catches, parse p50/p95 (in
process), model size, training time; for ours also the per-label table, the
most common confusions and the reliability of its confidence. Prints a
table and writes results/bench_nlu.{md,json}. Numbers, not assertions.
"""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Sequence

from scripts.eval_nlu import (
    Parsed,
    format_report,
    load_examples,
    parse_all,
    summarise,
)

ROOT = Path(__file__).resolve().parent.parent
RASA = Path(sys.executable).with_name("rasa")
SETS = {
    "dev": ROOT / "tests" / "nlu_dev" / "dev.yml",
    "second writer": ROOT / "tests" / "nlu_dev" / "second_writer.yml",
}
OUT = ROOT / "results" / "bench_nlu"

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
class System:
    """One trained system's cost figures and its results per set."""

    name: str
    train_s: float
    model_mb: float
    results: Dict[str, Dict[str, Any]]


def rasa_train(args: List[str], cache: Path) -> float:
    """Runs `rasa train ...` with an empty cache; returns seconds."""
    env = {**os.environ, "RASA_CACHE_DIRECTORY": str(cache)}
    started = time.monotonic()
    subprocess.run(
        [str(RASA), "train", *args], cwd=ROOT, env=env, check=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return time.monotonic() - started


def rasa_system(name: str, model: Path, seconds: float) -> System:
    """Scores a trained Rasa model on every set."""
    results = {
        label: summarise(asyncio.run(parse_all(model, load_examples(path))))
        for label, path in SETS.items()
    }
    return System(name, seconds, model.stat().st_size / 1e6, results)


def jieba_words(text: str) -> List[str]:
    """Jieba's words (a module-level function, so that the model pickles)."""
    import jieba

    jieba.setLogLevel(60)
    return list(jieba.lcut(text))


def linear_system(work: Path) -> System:
    """TF-IDF char 1-4 + jieba words, LinearSVC: the plain model to beat."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline, make_union
    from sklearn.svm import LinearSVC

    train = load_examples(ROOT / "data" / "nlu")
    started = time.monotonic()
    model = make_pipeline(
        make_union(
            TfidfVectorizer(analyzer="char", ngram_range=(1, 4), sublinear_tf=True),
            TfidfVectorizer(
                tokenizer=jieba_words, token_pattern=None, sublinear_tf=True
            ),
        ),
        LinearSVC(C=1.0),
    )
    model.fit([text for text, _ in train], [label for _, label in train])
    seconds = time.monotonic() - started
    saved = work / "linear.pkl"
    saved.write_bytes(pickle.dumps(model))
    results = {}
    for label, path in SETS.items():
        parsed = []
        for text, expected in load_examples(path):
            begun = time.perf_counter()
            got = str(model.predict([text])[0])
            ms = (time.perf_counter() - begun) * 1000
            parsed.append(Parsed(text, expected, got, 1.0, False, ms))
        results[label] = summarise(parsed)
    return System(
        "linear (TF-IDF + LinearSVC)", seconds, saved.stat().st_size / 1e6, results
    )


def table(systems: Sequence[System]) -> str:
    """One row per system and set, as Markdown."""
    lines = [
        "| system | set | accuracy | macro-F1 | lowest label F1 | wrong caught "
        "by fallback | right answered directly | parse p50 / p95 ms | model MB "
        "| train s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for system in systems:
        for label, r in system.results.items():
            lines.append(
                f"| {system.name} | {label} | {r['accuracy']:.3f} | "
                f"{r['macro_f1_domain']:.3f} | {r['min_label_f1_domain']:.3f} | "
                f"{r['wrong_caught_by_fallback']:.0%} | "
                f"{r['right_answered_directly']:.0%} | "
                f"{r['parse_ms_p50']:.1f} / {r['parse_ms_p95']:.1f} | "
                f"{system.model_mb:.1f} | {system.train_s:.0f} |"
            )
    return "\n".join(lines)


def confusions(summary: Dict[str, Any], top: int = 12) -> str:
    """The most common (expected → label) pairs."""
    rows = [
        f"| {c['expected']} | {c['predicted']} | {c['count']} |"
        for c in summary["confusions"][:top]
    ]
    return "\n".join(["| expected | got | times |", "|---|---|---|", *rows])


def main() -> int:
    """Train the three systems from scratch, score them, print and save."""
    systems: List[System] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        reference = work / "reference.yml"
        reference.write_text(REFERENCE_CONFIG, encoding="utf-8")
        print(
            "==> training ours from scratch (config.yml, NLU and dialogue)", flush=True
        )
        seconds = rasa_train(
            ["--config", "config.yml", "--domain", "domain", "--data", "data",
             "--out", str(work), "--fixed-model-name", "ours"],
            work / "cache-ours",
        )  # fmt: skip
        systems.append(rasa_system("ours", work / "ours.tar.gz", seconds))
        print("==> training the plain linear model", flush=True)
        systems.append(linear_system(work))
        print(
            "==> training Rasa's reference pipeline (DIET, ~10 min on 2 cores)",
            flush=True,
        )
        seconds = rasa_train(
            ["nlu", "--config", str(reference), "--nlu", "data/nlu",
             "--out", str(work), "--fixed-model-name", "reference"],
            work / "cache-reference",
        )  # fmt: skip
        systems.append(
            rasa_system("reference (DIET)", work / "reference.tar.gz", seconds)
        )

    ours = systems[0].results
    report = "\n\n".join(
        [
            "## NLU benchmark (same data, same sets, same run)",
            table(systems),
            *(
                f"### ours on the {label} set\n\n```\n"
                f"{format_report(ours[label], errors=False)}\n```\n\n"
                f"Most common confusions:\n\n{confusions(ours[label])}"
                for label in SETS
            ),
        ]
    )
    print(report)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.with_suffix(".md").write_text(report + "\n", encoding="utf-8")
    OUT.with_suffix(".json").write_text(
        json.dumps(
            [
                {"name": s.name, "train_s": s.train_s, "model_mb": s.model_mb,
                 "results": {k: {**v, "errors": v["errors"][:50]}
                             for k, v in s.results.items()}}
                for s in systems
            ],
            ensure_ascii=False, indent=2,
        ),
        encoding="utf-8",
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
