"""The diagnosis's first half: start, gather the facts (store, then user), diagnose.

Parts of one user turn, called by the diagnosis form's validation action
(actions/diagnosis_form.py) through a `Turn`; none of them is an action.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from actions.common.accounts import identified_account, lookup
from actions.common.facts import current_facts, kept_record, record_slot
from actions.common.forms import extract_answer
from actions.common.intents import SITUATIONS
from actions.common.outcomes import UNFINISHED_SLOT, record_outcome
from actions.common.turn import Turn
from actions.diagnosis.engine import default_rules
from actions.diagnosis.enums import LookupStatus, Reply
from actions.diagnosis.questions import ASKED_BY_NAME, questions_left

# Slots of one diagnosis after the facts, cleared when a new one starts.
WALK_SLOTS = (
    "findings",
    "current_finding",
    "steps_tried",
    "step_answer",
    "satisfaction",
    "rating_unclear",
    "resume_choice",
    "case_id",
)


async def start(turn: Turn, over: bool = False) -> None:
    """Say what happens next, keep the store's record; `over`: the user's restart.

    From here the diagnosis counts as abandoned until it ends
    (actions/common/outcomes.py).
    """
    if turn.intent in SITUATIONS:
        turn.say(SITUATIONS[turn.intent])
        turn.set(problem_text=turn.text)
    elif over:
        turn.say("utter_start_over")
    turn.clear(*WALK_SLOTS)

    account_id = identified_account(turn.tracker)
    result = await lookup(account_id)
    if result.status is LookupStatus.FOUND and result.facts is not None:
        turn.say("utter_lookup_found", account_id=account_id)
        turn.set(account_id=account_id, facts_source="store")
    elif result.status is LookupStatus.UNAVAILABLE:
        turn.say("utter_lookup_unavailable")
        turn.set(facts_source="unavailable")
        turn.clear("account_id")
    else:
        turn.say("utter_ask_intro")
        turn.set(facts_source="user")
        turn.clear("account_id")
    # The record of this diagnosis's account; none clears an earlier one.
    record = record_slot(result.facts)
    if record != {name: turn.get(name) for name in record}:
        turn.set(**record)
    turn.set(**{UNFINISHED_SLOT: True})
    await record_outcome(turn.tracker, "abandoned")


def next_fact(turn: Turn) -> Optional[str]:
    """The next question to ask: one the record leaves open, not skipped, unanswered."""
    skipped = turn.get("facts_skipped") or []
    left = questions_left(kept_record(turn.tracker), skipped)
    return next((name for name in left if turn.get(name) is None), None)


YES_NO_INTENTS = {"affirm": True, "deny": False}


def answers_the_question(turn: Turn, slot: str) -> bool:
    """Whether the latest message's words read as an answer to the fact asked."""
    return ASKED_BY_NAME[slot].parse(turn.text) is not None


def read_volunteered(turn: Turn) -> None:
    """Read the facts Rasa took from this message's entities ("被冻结了")."""
    for slot, value in turn.tracker.slots_to_validate().items():
        if slot in ASKED_BY_NAME and isinstance(value, str):
            turn.set(**read(turn, slot, value, asked=False))


def read_answer(turn: Turn, asked: str) -> bool:
    """Read the answer to the asked fact; False when the message is none.

    A message that is no answer is a digression: a rule answers it and the
    question is asked again.
    """
    answer = extract_answer(turn.tracker, asked, ASKED_BY_NAME[asked].parse)
    if not answer:
        return False
    read_volunteered(turn)
    turn.set(**read(turn, asked, answer[asked], asked=True))
    return True


def read(turn: Turn, slot: str, value: Any, asked: bool) -> Dict[str, Any]:
    """Typed value, a skip ("不知道"), or None (with "please say again" if `asked`)."""
    question = ASKED_BY_NAME[slot]
    parsed = question.parse(str(value))
    if parsed is None and question.yes_no:
        parsed = YES_NO_INTENTS.get(turn.intent)
    if parsed is Reply.SKIP:
        skipped = list(turn.get("facts_skipped") or [])
        return {slot: None, "facts_skipped": [*skipped, slot]}
    if parsed is None and asked:
        turn.say("utter_answer_unclear")
    return {slot: parsed}


def diagnose(turn: Turn) -> None:
    """Run the engine and tell the user what it found, most important first."""
    diagnosis = default_rules().diagnose(current_facts(turn.tracker))
    if not diagnosis.findings:
        partial = set(diagnosis.unknown_facts) & set(ASKED_BY_NAME)
        turn.say(
            "utter_no_single_cause_partial" if partial else "utter_no_single_cause"
        )
        turn.set(findings=[])
        return
    turn.say("utter_diagnosis_intro", count=len(diagnosis.findings))
    for finding in diagnosis.findings:
        turn.say(finding.explanation)
    turn.say("utter_diagnosis_walk_intro")
    turn.set(
        findings=list(diagnosis.codes),
        current_finding=diagnosis.findings[0].code,
        steps_tried=[],
    )
