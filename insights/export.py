"""``make review-export``: the reviewed messages into data/nlu/reviewed.yml.

Rasa NLU YAML (version "3.1"), one block per label, read by the next
``make train`` (it trains on data/). The file is the union of what it held and
the labels in the store (the store's label wins for a message in both), so an
export from an empty store loses nothing. Written: masked text only, labels
that exist (review.allowed_labels), never ``noise`` (not a question: nothing to
learn; a question about something else is labelled ``out_of_scope``), never a
message of the evaluation sets (the development sets written like users, the
older held-out file, the test stories' words) or one already in data/nlu,
never one message under two labels. Nothing to write: no file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple

import yaml

from insights.review import (
    NOISE,
    ROOT,
    ReviewError,
    allowed_labels,
    dedup_key,
    masked,
    reviewed,
)
from insights.stores import Stores
from nlu.normaliser import normalise

# Where the labels go, and the sets they must never leak into.
REVIEWED_FILE = Path("data") / "nlu" / "reviewed.yml"
TRAINING_DATA = Path("data") / "nlu"
EVALUATION_SETS = (
    Path("tests") / "nlu_dev" / "dev.yml",
    Path("tests") / "nlu_dev" / "second_writer.yml",
    Path("tests") / "nlu_test",
)
TEST_STORIES = Path("tests") / "stories"
# Rasa reads [text](entity) / [text]{...} in an example as an entity.
_MARKUP = re.compile(r"\[[^\]]*\]\s*[({]")


@dataclass
class ExportReport:
    """What export_reviewed wrote and what it refused, with why."""

    path: Path
    written: Dict[str, int] = field(default_factory=dict)
    refused: Dict[str, List[str]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Messages written."""
        return sum(self.written.values())

    def as_dict(self) -> Dict[str, Any]:
        """JSON-able."""
        return {
            "path": str(self.path),
            "written": self.total,
            "by_label": dict(sorted(self.written.items())),
            "refused": {reason: len(texts) for reason, texts in self.refused.items()},
        }


def nlu_file_examples(path: Path) -> List[Tuple[str, str]]:
    """(label, text) of every example of a Rasa NLU YAML file or folder."""
    pairs = []
    files = [path] if path.is_file() else sorted(path.rglob("*.yml"))
    for file in files:
        content = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        for block in content.get("nlu") or []:
            if "intent" in block:
                for line in str(block.get("examples") or "").splitlines():
                    if line.strip().startswith("- "):
                        pairs.append((str(block["intent"]), line.strip()[2:].strip()))
    return pairs


def _story_texts(folder: Path) -> List[str]:
    markup = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})")
    texts = []
    for path in sorted(folder.glob("*.yml")):
        content = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for story in content.get("stories") or []:
            for step in story.get("steps") or []:
                if "user" in step:
                    texts.append(markup.sub(r"\1", str(step["user"])).strip())
    return texts


def _keys(text: str) -> Tuple[str, str]:
    """The two ways tests/test_nlu_data.py finds a repeated message."""
    normalised = normalise(text)
    return normalised, "".join(c for c in normalised if c.isalnum()).lower()


def export_reviewed(
    stores: Stores, root: Path = ROOT, path: Optional[Path] = None
) -> ExportReport:
    """Write the reviewed messages (default: ``root``/data/nlu/reviewed.yml).

    The rules are the module's; raises ReviewError outside the repository
    (the evaluation sets must be there to keep them out).
    """
    path = path or root / REVIEWED_FILE
    missing = [str(place) for place in EVALUATION_SETS if not (root / place).exists()]
    if missing:
        raise ReviewError(
            "export needs the repository's evaluation sets (run it in the repo): "
            f"missing {', '.join(missing)}"
        )
    labels = set(allowed_labels(root / "domain")) - {NOISE}
    candidates: Dict[str, Tuple[str, str]] = {}
    if path.exists():
        for label, text in nlu_file_examples(path):
            candidates[dedup_key(text) or text] = (label, text)
    for row in reversed(reviewed(stores)):  # oldest first: the latest label wins
        candidates[dedup_key(row["text"]) or row["text"]] = (row["label"], row["text"])

    held_out: Set[str] = set()
    for place in EVALUATION_SETS:
        for _, text in nlu_file_examples(root / place):
            held_out |= set(_keys(text))
    if (root / TEST_STORIES).exists():
        for text in _story_texts(root / TEST_STORIES):
            held_out |= set(_keys(text))
    training: Dict[str, str] = {}
    for file in sorted((root / TRAINING_DATA).glob("*.yml")):
        if file.resolve() == path.resolve():
            continue
        for label, text in nlu_file_examples(file):
            for key in _keys(text):
                training[key] = label

    report = ExportReport(path)
    kept: List[Tuple[str, str]] = []
    seen: Set[Tuple[str, str]] = set()
    by_key: Dict[str, str] = {}
    conflicts: Set[str] = set()
    for label, raw in candidates.values():
        text = " ".join(masked(raw).split())
        reason = _refusal(text, label, labels, held_out, training)
        if reason:
            report.refused.setdefault(reason, []).append(text)
            continue
        keys = _keys(text)
        for key in keys:
            if by_key.setdefault(key, label) != label:
                conflicts.add(key)
        if (keys[0], label) not in seen:  # masking made two texts one
            seen.add((keys[0], label))
            kept.append((label, text))
    blocks: Dict[str, List[str]] = {}
    for label, text in sorted(kept, key=lambda pair: _keys(pair[1])[0]):
        if set(_keys(text)) & conflicts:
            report.refused.setdefault("two_labels", []).append(text)
            continue
        blocks.setdefault(label, []).append(text)
    report.written = {label: len(texts) for label, texts in blocks.items()}
    if not blocks:
        if path.exists():
            path.unlink()
        return report
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_nlu_yaml(blocks), encoding="utf-8")
    return report


def _refusal(
    text: str,
    label: str,
    labels: Set[str],
    held_out: Set[str],
    training: Mapping[str, str],
) -> Optional[str]:
    """Why a reviewed message is not exported, or None."""
    if label == NOISE:
        return "noise"
    if label not in labels:
        return "unknown_label"
    if not text or text.startswith("/") or _MARKUP.search(text):
        return "not_plain_text"
    keys = set(_keys(text))
    if keys & held_out:
        return "evaluation_set"
    if keys & set(training):
        return "in_training_data"
    return None


def render_nlu_yaml(blocks: Mapping[str, Sequence[str]]) -> str:
    """Rasa NLU YAML: one block per label, examples as a literal list."""
    lines = [
        'version: "3.1"',
        "# Generated by `make review-export` (python -m insights review-export) from",
        "# the labels reviewers gave real users' messages (masked); docs/insights.md.",
        "# Edit by relabelling in the review queue; removing a line here also works.",
        "nlu:",
    ]
    for label in sorted(blocks):
        lines.append(f"- intent: {label}")
        lines.append("  examples: |")
        lines += [f"    - {text}" for text in blocks[label]]
    return "\n".join(lines) + "\n"
