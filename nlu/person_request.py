"""Does a message ask for a person? Phrases as data, no Rasa import.

A user who writes "借呗不见了，我要转人工" asks for a person *and* says what is
wrong; the intent model weighs both and may pick the complaint. Asking for a
person is honoured whatever else the message says, so it is decided by the
phrase tables of ``nlu/person_request.yml`` (asks, vetoes, negations), not by
the model: `nlu.components.PersonRequestDetector` runs this after the
classifier and sets the intent. A declined person ("不用转人工", which the
model reads as a request: it has the words) is told apart the same way.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Pattern, Tuple

import yaml

PHRASES_FILE = Path(__file__).with_name("person_request.yml")
TABLES = ("asks", "vetoes", "negations")


@dataclass(frozen=True)
class PersonRequest:
    """A message's words about a person: asking for one, or declining one."""

    phrase: str
    declined: bool


@dataclass(frozen=True)
class PersonRequestPhrases:
    """The three tables, compiled: one alternation each."""

    asks: Pattern[str]
    vetoes: Pattern[str]
    negations: Pattern[str]

    @classmethod
    def from_tables(cls, tables: Dict[str, List[str]]) -> PersonRequestPhrases:
        """Compile the tables (each a non-empty list of regexes; ValueError if not)."""
        compiled = []
        for name in TABLES:
            patterns = tables.get(name)
            if not isinstance(patterns, list) or not patterns:
                raise ValueError(f"person-request phrases: {name} must be a list")
            if not all(isinstance(p, str) and p for p in patterns):
                raise ValueError(f"person-request phrases: {name} holds a non-text")
            try:
                compiled.append(re.compile("|".join(f"(?:{p})" for p in patterns)))
            except re.error as error:
                raise ValueError(f"person-request phrases: {name}: {error}") from None
        return cls(*compiled)

    def read(self, text: str) -> Optional[PersonRequest]:
        """Whether ``text`` asks for a person, declines one, or neither (None)."""
        text = text.lower()
        vetoed = _spans(self.vetoes, text)
        negations = [
            match
            for match in _matches(self.negations, text)
            if not any(_overlap(match.span(), span) for span in vetoed)
        ]
        blocked = vetoed + [match.span() for match in negations]
        for match in _matches(self.asks, text):
            if not any(_overlap(match.span(), span) for span in blocked):
                return PersonRequest(match.group(0), declined=False)
        if negations:
            return PersonRequest(negations[0].group(0), declined=True)
        return None


def _matches(pattern: Pattern[str], text: str) -> List[re.Match[str]]:
    """Every match, overlapping ones included (one per start position)."""
    found = []
    position = 0
    while position <= len(text):
        match = pattern.search(text, position)
        if match is None:
            break
        found.append(match)
        position = match.start() + 1
    return found


def _spans(pattern: Pattern[str], text: str) -> List[Tuple[int, int]]:
    return [match.span() for match in _matches(pattern, text)]


def _overlap(a: Tuple[int, int], b: Tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


@functools.lru_cache(maxsize=1)
def phrases() -> PersonRequestPhrases:
    """The project's phrase tables (read once)."""
    tables = yaml.safe_load(PHRASES_FILE.read_text(encoding="utf-8"))
    if not isinstance(tables, dict):
        raise ValueError(f"{PHRASES_FILE.name}: expected the tables {TABLES}")
    return PersonRequestPhrases.from_tables(tables)


def read_person_request(text: str) -> Optional[PersonRequest]:
    """What ``text`` (normalised) says about a person, if anything."""
    return phrases().read(text)


def asks_for_person(text: str) -> Optional[str]:
    """The phrase of ``text`` (normalised) that asks for a person, or None."""
    found = read_person_request(text)
    return found.phrase if found is not None and not found.declined else None
