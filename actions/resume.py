"""A user back at an unfinished diagnosis: where we left off, go on or start over.

When a conversation stops mid-diagnosis (the user left; the session expired)
its slots carry over into the next session, but the form does not: the next
message is read afresh. A new complaint starts a new diagnosis; other
messages (data/rules/diagnosis.yml) bring the form back, and its first call
offers this choice instead of starting. Parts of a turn of the diagnosis form's
validation action (actions/diagnosis_form.py), not an action.
"""

from __future__ import annotations

from typing import Optional

from actions.common.intents import DIGRESSIONS
from actions.common.turn import Turn
from actions.diagnose import next_fact
from actions.diagnosis.answers import parse_resume_choice
from actions.diagnosis.walk import steps_from_slot
from actions.fixes import current_finding

CHOICE_SLOT = "resume_choice"
YES_NO_INTENTS = {"affirm": True, "deny": False}


def can_resume(turn: Turn) -> bool:
    """Whether an unfinished diagnosis has a question left to go on with."""
    if current_finding(turn) is not None:
        return True
    return turn.get("findings") is None and next_fact(turn) is not None


def offer(turn: Turn) -> None:
    """Say where we left off and ask whether to go on."""
    finding = current_finding(turn)
    if finding is not None:
        turn.say(
            "utter_resume_fix",
            count=len(turn.get("findings") or []),
            step=len(steps_from_slot(turn.get("steps_tried"))) + 1,
        )
        turn.say(finding.explanation)
    else:
        turn.say("utter_resume_facts")
    turn.say("utter_resume_question")
    turn.set(**{CHOICE_SLOT: None, "requested_slot": CHOICE_SLOT})


def is_digression(turn: Turn) -> bool:
    """A message that is its own request (a rule answers it), not a choice."""
    return turn.intent in DIGRESSIONS and parse_resume_choice(turn.text) is None


def read_choice(turn: Turn) -> Optional[bool]:
    """True goes on, False starts over, None is unclear."""
    choice = parse_resume_choice(turn.text)
    return YES_NO_INTENTS.get(turn.intent) if choice is None else choice
