"""The intent model: a calibrated linear classifier over several views of a message.

Pure scikit-learn, no Rasa import: `nlu.components.LinearIntentClassifier` wraps it
for the pipeline, `scripts/bench_nlu.py` measures it, and the tests train it on
small tables.

Why linear: real users write 4-25 characters with few clues, and one character
often decides (还 hái/huán, 关 by whom). A linear model over character n-grams,
jieba words, pinyin syllables and our cue words generalises from a few thousand
examples better than a neural classifier trained on the same data, trains in
seconds and parses in well under a millisecond (docs/nlu.md has the
measurements).

Why calibrated: the "did you mean" fallback only helps when a wrong answer comes
with a low confidence. The probabilities are divided by a temperature fitted on
out-of-fold predictions of the training data (never on the development set), so
that a confidence of 0.6 is right about 60% of the time.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Dict, List, Pattern, Sequence, Tuple

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

# Runs of digits or masked digits (***) carry no meaning of their own.
_NUMBER = re.compile(r"[0-9*＊]+")
_CJK_CHAR = re.compile(r"[\u3400-\u9fff]")
_PUNCT_ONLY = re.compile(r"^[^\w#]+$")


def _as_is(bag: List[str]) -> List[str]:
    """The vectorizer's analyzer: bags are made by `features` already."""
    return bag


@dataclass(frozen=True)
class LinearSettings:
    """The model's knobs (config.yml sets them; the defaults are the measured best)."""

    char_max_n: int = 2
    word_bigrams: bool = False
    pinyin: bool = True
    c: float = 16.0
    class_weight_balanced: bool = True
    min_df: int = 1
    calibration_folds: int = 3
    random_seed: int = 42


@dataclass
class Cue:
    """A named cue-word pattern (data/nlu/cues.yml): a feature, not an entity."""

    name: str
    pattern: Pattern[str]


@functools.lru_cache(maxsize=4096)
def _syllable(char: str) -> str:
    from pypinyin import lazy_pinyin  # lazily: the dictionary takes a moment

    return lazy_pinyin(char)[0]


def pinyin_syllables(text: str) -> List[str]:
    """Toneless pinyin of each Chinese character (借呗 and 借贝 both give jie bei)."""
    return [_syllable(c) for c in text if _CJK_CHAR.match(c)]


def features(
    text: str, words: Sequence[str], cues: Sequence[Cue], settings: LinearSettings
) -> List[str]:
    """The message as a bag of named features."""
    masked = _NUMBER.sub("#", text.lower())
    padded = f"^{masked}$"
    out: List[str] = []
    for n in range(1, settings.char_max_n + 1):
        out.extend(f"c{n}:{padded[i : i + n]}" for i in range(len(padded) - n + 1))
    numbered = (_NUMBER.sub("#", w.lower()) for w in words)
    kept = [w for w in numbered if w.strip() and not _PUNCT_ONLY.match(w)]
    out.extend(f"w:{w}" for w in kept)
    if settings.word_bigrams:
        out.extend(
            f"w2:{a}_{b}" for a, b in zip(["^", *kept], [*kept, "$"], strict=True)
        )
    if settings.pinyin:
        syllables = pinyin_syllables(masked)
        out.extend(f"p2:{a}_{b}" for a, b in pairwise(syllables))
    out.extend(f"cue:{cue.name}" for cue in cues if cue.pattern.search(text))
    return out


@dataclass
class LinearIntentModel:
    """Trained model: feature index, idf weights, label weights and temperature.

    After `fit` the model keeps plain arrays only, so it is saved as JSON and
    NumPy files (no pickle) and predicts without scikit-learn objects.
    """

    settings: LinearSettings
    cues: List[Cue] = field(default_factory=list)
    labels: List[str] = field(default_factory=list)
    temperature: float = 1.0
    vocabulary: Dict[str, int] = field(default_factory=dict)
    idf: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    coef: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    intercept: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    def _bags(
        self, texts: Sequence[str], words: Sequence[Sequence[str]]
    ) -> List[List[str]]:
        return [
            features(t, w, self.cues, self.settings)
            for t, w in zip(texts, words, strict=True)
        ]

    def _fit_once(
        self, bags: List[List[str]], y: np.ndarray
    ) -> Tuple[TfidfVectorizer, LogisticRegression]:
        vectorizer = TfidfVectorizer(
            analyzer=_as_is,
            sublinear_tf=True,
            min_df=self.settings.min_df,
            dtype=np.float32,
        )
        x = vectorizer.fit_transform(bags)
        classifier = LogisticRegression(
            C=self.settings.c,
            max_iter=3000,
            class_weight="balanced" if self.settings.class_weight_balanced else None,
            random_state=self.settings.random_seed,
        )
        classifier.fit(x, y)
        return vectorizer, classifier

    def fit(
        self,
        texts: Sequence[str],
        words: Sequence[Sequence[str]],
        labels: Sequence[str],
    ) -> LinearIntentModel:
        """Trains on (text, jieba words, label) and fits the temperature."""
        self.labels = sorted(set(labels))
        if len(self.labels) < 2:
            raise ValueError("the intent model needs examples of two labels or more")
        index = {label: i for i, label in enumerate(self.labels)}
        y = np.array([index[label] for label in labels])
        bags = self._bags(texts, words)
        self.temperature = self._fit_temperature(bags, y)
        vectorizer, classifier = self._fit_once(bags, y)
        self.vocabulary = {str(k): int(v) for k, v in vectorizer.vocabulary_.items()}
        self.idf = vectorizer.idf_.astype(np.float32)
        coef, intercept = classifier.coef_, classifier.intercept_
        if len(self.labels) == 2:  # scikit-learn keeps one row for two labels
            coef, intercept = (
                np.vstack([-coef, coef]),
                np.hstack([-intercept, intercept]),
            )
        self.coef = coef.astype(np.float32)
        self.intercept = intercept.astype(np.float32)
        return self

    def _fit_temperature(self, bags: List[List[str]], y: np.ndarray) -> float:
        """The temperature that makes out-of-fold probabilities honest."""
        counts = np.bincount(y, minlength=len(self.labels))
        folds = min(self.settings.calibration_folds, int(counts.min()))
        if folds < 2:
            return 1.0
        logits = np.zeros((len(y), len(self.labels)))
        splitter = StratifiedKFold(
            n_splits=folds, shuffle=True, random_state=self.settings.random_seed
        )
        for train, held in splitter.split(np.zeros(len(y)), y):
            vectorizer, classifier = self._fit_once([bags[i] for i in train], y[train])
            scores = classifier.decision_function(
                vectorizer.transform([bags[i] for i in held])
            )
            if scores.ndim == 1:
                scores = np.stack([-scores, scores], axis=1)
            logits[held] = scores

        def nll(t: float) -> float:
            return float(-log_softmax(logits / t, axis=1)[np.arange(len(y)), y].mean())

        return float(minimize_scalar(nll, bounds=(0.05, 20.0), method="bounded").x)

    def _vector(self, bag: List[str]) -> Tuple[np.ndarray, np.ndarray]:
        """The TF-IDF vector of one bag as (indices, l2-normalised weights)."""
        counts: Dict[int, int] = {}
        for feature in bag:
            i = self.vocabulary.get(feature)
            if i is not None:
                counts[i] = counts.get(i, 0) + 1
        if not counts:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        indices = np.fromiter(counts.keys(), np.int64, len(counts))
        tf = np.fromiter(counts.values(), np.float32, len(counts))
        weights = (1.0 + np.log(tf)) * self.idf[indices]
        return indices, weights / np.linalg.norm(weights)

    def predict_proba(
        self, texts: Sequence[str], words: Sequence[Sequence[str]]
    ) -> np.ndarray:
        """Calibrated probabilities, one row per text, columns in `labels` order."""
        if not self.labels:
            raise RuntimeError("the intent model is not trained")
        rows = []
        for bag in self._bags(texts, words):
            indices, weights = self._vector(bag)
            rows.append(self.coef[:, indices] @ weights + self.intercept)
        return softmax(np.array(rows, dtype=np.float64) / self.temperature, axis=1)

    def rank(self, text: str, words: Sequence[str]) -> List[Tuple[str, float]]:
        """Every label with its probability, best first."""
        probabilities = self.predict_proba([text], [words])[0]
        order = np.argsort(-probabilities, kind="stable")
        return [(self.labels[i], float(probabilities[i])) for i in order]

    def save(self, folder: Path) -> None:
        """Writes model.json (settings, labels, cues, features) and weights.npz."""
        features_in_order = sorted(self.vocabulary, key=self.vocabulary.__getitem__)
        meta = {
            "settings": asdict(self.settings),
            "labels": self.labels,
            "temperature": self.temperature,
            "cues": [[cue.name, cue.pattern.pattern] for cue in self.cues],
            "features": features_in_order,
        }
        (folder / "model.json").write_text(
            json.dumps(meta, ensure_ascii=False), encoding="utf-8"
        )
        np.savez_compressed(
            folder / "weights.npz",
            idf=self.idf,
            coef=self.coef,
            intercept=self.intercept,
        )

    @classmethod
    def load(cls, folder: Path) -> LinearIntentModel:
        """Reads what `save` wrote."""
        meta = json.loads((folder / "model.json").read_text(encoding="utf-8"))
        with np.load(folder / "weights.npz", allow_pickle=False) as arrays:
            idf, coef, intercept = arrays["idf"], arrays["coef"], arrays["intercept"]
        return cls(
            settings=LinearSettings(**meta["settings"]),
            cues=[Cue(name, re.compile(pattern)) for name, pattern in meta["cues"]],
            labels=list(meta["labels"]),
            temperature=float(meta["temperature"]),
            vocabulary={f: i for i, f in enumerate(meta["features"])},
            idf=idf,
            coef=coef,
            intercept=intercept,
        )


def compile_cues(patterns: Dict[str, List[str]]) -> List[Cue]:
    """Cue tables (name → regexes) as features; invalid regexes raise."""
    return [
        Cue(name, re.compile("|".join(f"(?:{p})" for p in regexes)))
        for name, regexes in sorted(patterns.items())
    ]
