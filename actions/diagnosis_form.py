"""The diagnosis as one form, and every user turn of it as one call of one action.

Each custom action is an HTTP round trip from Rasa carrying the whole tracker,
followed by a policy prediction, so the diagnosis is one form
(`diagnosis_form`, domain/diagnosis.yml) whose validation action does the
whole turn: read the answer, re-check, diagnose, show the next fix step, wrap
up. What it asks next is the form's requested slot:

- a fact (account_status … credit_inquiries_last_30d): Rasa asks it with the
  fact's ask response, in the same call;
- ``step_answer``: "完成了吗?" after the current finding's fix steps, said here
  (the domain has no ask response for it, so Rasa adds nothing);
- ``satisfaction``: the rating; Rasa asks utter_ask_satisfaction;
- ``resume_choice``: go on or start over, for a user back at an unfinished
  diagnosis (actions/resume.py);
- none: the diagnosis is over and the form ends (data/rules/diagnosis.yml).

A message that is no answer (a digression) sets nothing, so Rasa hands it to
the rules, which answer it and bring the form back: its next call asks again.
A new complaint, unless its words answer the question, starts a new
diagnosis in the same call.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.common.intents import SITUATIONS
from actions.common.outcomes import UNFINISHED_SLOT
from actions.common.turn import (
    Turn,
    activated_now,
    requested,
    resumed_after_digression,
)
from actions.diagnose import (
    answers_the_question,
    diagnose,
    next_fact,
    read_answer,
    read_volunteered,
    start,
)
from actions.diagnosis.answers import (
    is_cancel,
    parse_rating,
    parse_resume_choice,
    wants_to_go_on,
)
from actions.diagnosis.questions import ASKED_BY_NAME
from actions.fixes import (
    RATING_SLOT,
    STEP_SLOT,
    answer_current_step,
    rate,
    read_rating,
    read_step_answer,
    show_step,
    wrap_up,
)
from actions.resume import CHOICE_SLOT, can_resume, is_digression, offer, read_choice

FORM = "diagnosis_form"


class ValidateDiagnosisForm(Action):
    """One user turn of the diagnosis: the answer, what follows, the next question."""

    def name(self) -> Text:
        """Rasa calls validate_<form> on every run of the form."""
        return "validate_diagnosis_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[EventType]:
        """The slot events of the turn, `requested_slot` always among them.

        No events at all when the message answers nothing: Rasa then rejects
        the form for this turn and a rule answers the message.
        """
        turn = Turn(tracker, dispatcher)
        asked = requested(tracker)
        if activated_now(tracker, FORM):
            await activate(turn)
        elif resumed_after_digression(tracker, FORM):
            ask_again(turn, asked)
        elif not await answer(turn, asked):
            return []
        return turn.events()


async def activate(turn: Turn) -> None:
    """A complaint starts a diagnosis; anything else offers the unfinished one.

    "继续" needs no offer: the user asked to go on.
    """
    if turn.intent not in SITUATIONS and turn.get(UNFINISHED_SLOT) and can_resume(turn):
        if wants_to_go_on(turn.text):
            go_on(turn)
        else:
            offer(turn)
        return
    await restart(turn)


async def restart(turn: Turn, over: bool = False) -> bool:
    """A new diagnosis, up to its first question."""
    await start(turn, over)
    read_volunteered(turn)
    await advance(turn)
    return True


async def advance(turn: Turn) -> None:
    """Ask what is next: a fact, else the diagnosis and a fix step, else the rating."""
    if turn.get("findings") is None:
        fact = next_fact(turn)
        if fact is not None:
            turn.set(requested_slot=fact)
            return
        diagnose(turn)
    if turn.get("current_finding"):
        show_step(turn)
        turn.set(requested_slot=STEP_SLOT)
        return
    await wrap_up(turn)
    turn.set(requested_slot=RATING_SLOT)


def ask_again(turn: Turn, asked: Optional[str]) -> None:
    """After a digression: the question again (Rasa asks facts and the rating)."""
    if asked == STEP_SLOT:
        show_step(turn, again=True)
    elif asked == CHOICE_SLOT:
        turn.say("utter_resume_question")
    turn.set(requested_slot=asked)


async def answer(turn: Turn, asked: Optional[str]) -> bool:
    """Read the answer to what was asked; False when the message is none."""
    if asked in ASKED_BY_NAME:
        return await answer_fact(turn, asked)
    if asked == STEP_SLOT:
        return await answer_step(turn)
    if asked == RATING_SLOT:
        return await answer_rating(turn)
    if asked == CHOICE_SLOT:
        return await answer_choice(turn)
    return await restart(turn)  # nothing was asked: begin again


def is_new_complaint(turn: Turn, answered: bool) -> bool:
    """A complaint whose words do not answer the question starts afresh."""
    return turn.intent in SITUATIONS and not answered


def pause(turn: Turn) -> bool:
    """Stop here ("算了"); the diagnosis stays unfinished, to go on another time."""
    turn.say("utter_diagnosis_paused")
    # Set again: a turn without a slot event would be read as no answer.
    turn.set(**{UNFINISHED_SLOT: True, "requested_slot": None})
    return True


async def answer_fact(turn: Turn, asked: str) -> bool:
    """A fact: read it, then the next question (or the diagnosis)."""
    if is_cancel(turn.text):
        return pause(turn)
    if is_new_complaint(turn, answers_the_question(turn, asked)):
        return await restart(turn)
    if not read_answer(turn, asked):
        return False
    await advance(turn)
    return True


async def answer_step(turn: Turn) -> bool:
    """The answer to "完成了吗?": record it, re-check, the next step or the wrap-up."""
    # A complaint here is never read as the step's answer, even a short one.
    if is_new_complaint(turn, answered=False):
        return await restart(turn)
    text = read_step_answer(turn)
    if text is None:
        return False
    if await answer_current_step(turn, text):
        await advance(turn)
    else:
        show_step(turn, again=True)
        turn.set(requested_slot=STEP_SLOT)
    return True


async def answer_rating(turn: Turn) -> bool:
    """The rating: thanks and the end, or the question again."""
    if is_new_complaint(turn, parse_rating(turn.text) is not None):
        return await restart(turn)
    text = read_rating(turn)
    if text is None:
        return False
    done = await rate(turn, text)
    turn.set(requested_slot=None if done else RATING_SLOT)
    return True


async def answer_choice(turn: Turn) -> bool:
    """Go on where we left off, or start over."""
    if is_new_complaint(turn, parse_resume_choice(turn.text) is not None):
        return await restart(turn)
    if is_cancel(turn.text) and parse_resume_choice(turn.text) is None:
        return pause(turn)
    if is_digression(turn):
        return False
    choice = read_choice(turn)
    if choice is None:
        turn.say("utter_resume_question")
        turn.set(**{CHOICE_SLOT: None, "requested_slot": CHOICE_SLOT})
    elif not choice:
        await restart(turn, over=True)
    else:
        go_on(turn)
    return True


def go_on(turn: Turn) -> None:
    """Back where we left off: the step again, or Rasa asks the next fact."""
    turn.set(**{CHOICE_SLOT: True})
    if turn.get("current_finding"):
        show_step(turn, again=True)
        turn.set(requested_slot=STEP_SLOT)
    else:
        turn.set(requested_slot=next_fact(turn))
