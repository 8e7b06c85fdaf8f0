"""Build the project's spaCy pipeline from files in the repo (no model download).

A blank ``zh`` pipeline with an EntityRuler whose patterns come from
``nlu/spacy_patterns.jsonl`` (products, account states, bank names). Rasa's
SpacyNLP loads the saved folder by path and SpacyEntityExtractor reads its
entities.

The pipeline segments by character, not with jieba: the EntityRuler tokenizes
its phrase patterns when it loads, and jieba's segmentation of 借呗 depends on
whether our user dictionary happened to be loaded into jieba's global state
first. Characters make the patterns match the same way every time; the
word-level work is done by Rasa's JiebaTokenizer with the domain dictionary.

Usage: python -m nlu.build_spacy [OUTPUT_DIR]   (default: build/spacy_zh)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Dict, List

PATTERNS = Path(__file__).with_name("spacy_patterns.jsonl")
DEFAULT_OUTPUT = Path("build/spacy_zh")
PIPELINE_NAME = "jiebei_zh"
PIPELINE_VERSION = "1.0.0"


def load_patterns(path: Path = PATTERNS) -> List[Dict[str, Any]]:
    """Read the JSONL patterns file, refusing malformed lines with their number."""
    patterns = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            pattern = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{number}: not JSON ({error.msg})") from None
        if not isinstance(pattern, dict) or not {"label", "pattern"} <= set(pattern):
            raise ValueError(f"{path}:{number}: needs 'label' and 'pattern'")
        patterns.append(pattern)
    return patterns


def build(output: Path = DEFAULT_OUTPUT) -> Path:
    """Create the pipeline and save it to ``output``."""
    import spacy

    nlp = spacy.blank("zh", config={"nlp": {"tokenizer": {"segmenter": "char"}}})
    nlp.meta["name"] = PIPELINE_NAME
    nlp.meta["version"] = PIPELINE_VERSION
    nlp.meta["description"] = "借呗助手: character-segmented zh + domain EntityRuler"
    ruler = nlp.add_pipe("entity_ruler", config={"phrase_matcher_attr": "ORTH"})
    ruler.add_patterns(load_patterns())
    output.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(output)
    return output


def main() -> int:
    """Entry point for ``make``."""
    output = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUTPUT
    try:
        path = build(output)
    except (OSError, ValueError) as error:
        print(f"build_spacy: {error}", file=sys.stderr)
        return 1
    print(f"spaCy pipeline written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
