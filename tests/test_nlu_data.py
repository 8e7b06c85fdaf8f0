"""The NLU data's shape and the honesty of the development sets (docs/nlu.md)."""

from __future__ import annotations

import csv
from collections import Counter
from typing import Dict, List, Tuple

import pytest
import yaml

from devtools.project import ROOT
from insights.export import REVIEWED_FILE as REVIEWED
from nlu.normaliser import normalise
from tests.test_project import CONTRACT_DOMAIN_INTENTS, bare, nlu_examples

DEV = ROOT / "tests" / "nlu_dev"
SETS = {"dev": DEV / "dev.yml", "second_writer": DEV / "second_writer.yml"}


def _keys(text: str) -> Tuple[str, str]:
    """Two ways a message can repeat: after our normaliser, or letters only."""
    normalised = normalise(text)
    return normalised, "".join(c for c in normalised if c.isalnum()).lower()


def _annotations(name: str) -> List[Dict[str, str]]:
    path = DEV / f"{name}_annotations.tsv"
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


@pytest.mark.parametrize("name", sorted(SETS))
def test_no_development_message_is_in_the_training_data(name: str) -> None:
    train = {
        key for _, text in nlu_examples(ROOT / "data" / "nlu") for key in _keys(text)
    }
    held = nlu_examples(SETS[name])
    leaked = [text for _, text in held if set(_keys(text)) & train]
    assert leaked == []


def test_the_development_set_covers_every_domain_label_like_users() -> None:
    examples = nlu_examples(SETS["dev"])
    assert len(examples) >= 600
    counts = Counter(bare(label) for label, _ in examples)
    assert set(counts) >= CONTRACT_DOMAIN_INTENTS
    assert min(counts[label] for label in CONTRACT_DOMAIN_INTENTS) >= 20
    # Users' length: mostly 4-25 characters, not the writers' long sentences.
    lengths = sorted(len(text) for _, text in examples)
    assert 8 <= lengths[len(lengths) // 2] <= 20


@pytest.mark.parametrize("name", sorted(SETS))
def test_only_messages_both_labellers_agreed_on_are_kept(name: str) -> None:
    rows = _annotations(name)
    kept = {(r["message"], r["labeller_1"]) for r in rows if r["kept"] == "yes"}
    assert all(
        (r["labeller_1"] == r["labeller_2"]) == (r["kept"] == "yes") for r in rows
    )
    assert sum(r["kept"] == "yes" for r in rows) / len(rows) >= 0.9  # agreement
    in_file = {(text, bare(label)) for label, text in nlu_examples(SETS[name])}
    assert in_file == kept


def test_each_intent_has_one_place_in_the_training_data() -> None:
    """One topic file per intent; reviewed.yml (`make review-export`, real users'
    messages labelled by reviewers) holds a block per label beside them."""
    places: Dict[str, List[str]] = {}
    for path in sorted((ROOT / "data" / "nlu").glob("*.yml")):
        if path.name == REVIEWED.name:
            continue
        blocks = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("nlu", [])
        for block in blocks:
            if "intent" in block:
                places.setdefault(block["intent"], []).append(path.name)
    assert {intent: files for intent, files in places.items() if len(files) > 1} == {}
    names = {p.stem for p in (ROOT / "data" / "nlu").glob("*.yml")}
    assert not {n for n in names if n.startswith("more_") or n == "former_test"}


def test_training_examples_do_not_contradict_each_other() -> None:
    seen: Dict[str, str] = {}
    clashes = []
    for label, text in nlu_examples(ROOT / "data" / "nlu"):
        key = normalise(text)
        if seen.setdefault(key, label) != label:
            clashes.append((text, seen[key], label))
    assert clashes == []
