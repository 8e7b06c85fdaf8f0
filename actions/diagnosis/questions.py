"""The facts the bot asks the user for, declared once, and the facts the engine sees.

A conversation has two sources of facts, kept apart: the account store's
record (read once when the diagnosis starts, again only to re-check a fix the
user says is done) and the user's answers to the facts form. `merge_facts` is
the one place where they meet. `ASKED_FACTS` is the one list of the questions:
the facts form (domain), its validation action and the domain's slots are
checked against it by tests/actions/test_diagnose.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Collection, Dict, Mapping, Optional, Tuple

from actions.diagnosis.answers import (
    Answer,
    parse_account_status,
    parse_count,
    parse_overdue,
    parse_sesame_score,
    parse_yes_no_answer,
)
from actions.diagnosis.facts import AccountFacts


@dataclass(frozen=True)
class AskedFact:
    """One question: the fact it asks for and how a free answer reads.

    `name` is the fact, the facts form's slot holding the user's answer, and
    the name of the domain's question for that slot.
    """

    name: str
    parse: Callable[[str], Answer]
    # An affirm/deny intent answers it when the words alone do not.
    yes_no: bool = False
    # Facts the same question covers: a "yes" confirms them too, and a store
    # record that knows any of them answers the question.
    covers: Tuple[str, ...] = ()

    @property
    def facts(self) -> Tuple[str, ...]:
        """Every fact this question is about."""
        return (self.name, *self.covers)

    def answered_by(self, record: Optional[AccountFacts]) -> bool:
        """Whether the store's record already answers this question."""
        return record is not None and any(
            record.get(name) is not None for name in self.facts
        )


# In the order the bot asks.
ASKED_FACTS: Tuple[AskedFact, ...] = (
    AskedFact("account_status", parse_account_status),
    # One question for name, ID and phone together.
    AskedFact(
        "real_name_verified",
        parse_yes_no_answer,
        yes_no=True,
        covers=("phone_verified",),
    ),
    AskedFact("bank_cards", parse_count),
    AskedFact("sesame_score", parse_sesame_score),
    AskedFact("overdue_count", parse_overdue),
    AskedFact("credit_inquiries_last_30d", parse_count),
)
ASKED_BY_NAME: Dict[str, AskedFact] = {asked.name: asked for asked in ASKED_FACTS}


def questions_left(
    record: Optional[AccountFacts], skipped: Collection[str]
) -> Tuple[str, ...]:
    """The questions still worth asking: not answered by the record, not skipped."""
    return tuple(
        asked.name
        for asked in ASKED_FACTS
        if asked.name not in skipped and not asked.answered_by(record)
    )


def answers_to_facts(answers: Mapping[str, Any]) -> AccountFacts:
    """Facts from the user's (already validated) answers; the rest unknown.

    `answers` maps question names to typed answers (other keys are ignored).
    "Yes" to the real-name question verifies name and phone; "no" says the
    real name is incomplete.
    """
    told: Dict[str, Any] = {}
    for asked in ASKED_FACTS:
        value = answers.get(asked.name)
        if value is None:
            continue
        told[asked.name] = value
        if value is True:
            told.update(dict.fromkeys(asked.covers, True))
    return AccountFacts().updated(told)


def merge_facts(
    record: Optional[AccountFacts], answers: Mapping[str, Any]
) -> AccountFacts:
    """The facts the engine sees: the store's record, its gaps filled by answers.

    The store is the authority for what it knows: an answer counts only for a
    fact the record leaves unknown. Without a record (an anonymous user, a
    store that failed) the answers are all there is.
    """
    told = answers_to_facts(answers)
    if record is None:
        return told
    known = set(record.known())
    return record.updated({n: told.get(n) for n in told.known() if n not in known})
