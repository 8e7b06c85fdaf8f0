"""The project's files as tests and scripts read them: root, domain, test stories."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, List, Tuple

import yaml

ROOT = Path(__file__).resolve().parent.parent


def load_domain() -> Dict[str, Any]:
    """The domain folder merged the way Rasa merges it (responses, intents, …)."""
    merged: Dict[str, Any] = {
        "intents": [],
        "entities": [],
        "actions": [],
        "responses": {},
    }
    for path in sorted((ROOT / "domain").glob("*.yml")):
        part = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for key in ("intents", "entities", "actions"):
            merged[key].extend(part.get(key, []))
        merged["responses"].update(part.get("responses", {}))
    return merged


def story_messages(folder: Path) -> List[Tuple[str, str]]:
    """(intent, text) of every user message of the test stories, markup removed."""
    markup = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})")
    pairs = []
    for path in sorted(folder.glob("*.yml")):
        for story in yaml.safe_load(path.read_text(encoding="utf-8"))["stories"]:
            for step in story["steps"]:
                if "user" in step:
                    text = markup.sub(r"\1", step["user"]).strip()
                    pairs.append((step.get("intent", ""), text))
    return pairs
