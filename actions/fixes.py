"""The diagnosis's second half: walk the fixes one finding at a time, wrap up, rate.

Parts of one user turn, called by the diagnosis form's validation action
(actions/diagnosis_form.py) through a `Turn`; none of them is an action.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Optional

from actions.common.accounts import identified_account, lookup
from actions.common.blocking import run_blocking
from actions.common.facts import RECORD_SLOT, kept_record
from actions.common.forms import extract_answer
from actions.common.outcomes import UNFINISHED_SLOT, record_outcome
from actions.common.turn import Turn
from actions.diagnosis.answers import parse_rating, parse_short_yes_no
from actions.diagnosis.engine import Finding, default_rules
from actions.diagnosis.enums import FixKind, LookupStatus, Recheck, Reply, StepAnswer
from actions.diagnosis.facts import AccountFacts
from actions.diagnosis.questions import merge_facts
from actions.diagnosis.walk import (
    answer_step,
    longest_wait,
    next_finding,
    steps_from_slot,
    unresolved,
)
from actions.services.cases import case_store
from actions.services.sql import StoreUnavailable

logger = logging.getLogger(__name__)

# The slot the form asks for while a fix step is shown. The domain has no ask
# response for it, so Rasa asks nothing itself: `show_step` asks, with the steps.
STEP_SLOT = "step_answer"
RATING_SLOT = "satisfaction"

RECHECK_RESPONSES = {
    Recheck.CONFIRMED: "utter_recheck_confirmed",
    Recheck.PENDING: "utter_recheck_pending",
    Recheck.NOTED: "utter_recheck_noted",
}
DEFAULT_WAIT_DAYS = 30
# A yes/no intent answers "完成了吗?" whatever the words; any other message
# (an inform like "卡绑好了") answers only if its words read as yes or no, so
# a fact told out of turn ("我芝麻分六百多") is not taken for "done".
YES_NO_INTENTS = {"affirm": True, "deny": False}


def current_finding(turn: Turn) -> Optional[Finding]:
    """The finding whose fix is being walked through, if any."""
    code = turn.get("current_finding")
    return default_rules().finding(code) if code else None


def show_step(turn: Turn, again: bool = False) -> None:
    """The current finding's fix steps and "完成了吗?"; `again`: a short reminder."""
    finding = current_finding(turn)
    if finding is None:
        return
    if again:
        turn.say("utter_ask_step_again")
        turn.say(finding.fix_steps[-1], wait_days=finding.wait_days)
    else:
        for response in finding.fix_steps:
            turn.say(response, wait_days=finding.wait_days)
    turn.say(
        "utter_ask_step_done" if finding.kind is FixKind.NOW else "utter_ask_step_ack"
    )


async def _reread_record(turn: Turn) -> Optional[AccountFacts]:
    """The store's record now, for the re-check; None when the store cannot say."""
    result = await lookup(identified_account(turn.tracker))
    return result.facts if result.status is LookupStatus.FOUND else None


def read_step_answer(turn: Turn) -> Optional[str]:
    """The answer to "完成了吗?" as text, or None when the message is none.

    A yes/no intent answers; otherwise the words are read like other answers.
    """
    if turn.intent in YES_NO_INTENTS:
        return turn.text or "yes"
    answer = extract_answer(turn.tracker, STEP_SLOT, parse_short_yes_no)
    return answer.get(STEP_SLOT)


async def answer_current_step(turn: Turn, text: str) -> bool:
    """Record the step, say what the re-check found, pick the next finding.

    False when the answer was unclear (the hint is said; the step stays).
    """
    finding = current_finding(turn)
    said_yes = YES_NO_INTENTS.get(turn.intent)
    if said_yes is None:
        said_yes = parse_short_yes_no(text)
    if finding is None or said_yes is None:
        turn.say("utter_step_answer_hint")
        turn.set(**{STEP_SLOT: None})
        return False

    record = kept_record(turn.tracker)
    fresh: Optional[AccountFacts] = None
    if said_yes and finding.kind is FixKind.NOW and record is not None:
        # "Done": the one time the store is read again, to re-check.
        fresh = await _reread_record(turn)
    table = default_rules()
    step = answer_step(finding, said_yes, fresh, table)
    if step.answer is StepAnswer.CANNOT:
        turn.say(finding.alternative)
    elif step.answer is StepAnswer.DONE:
        turn.say(RECHECK_RESPONSES[step.recheck or Recheck.NOTED])
    else:
        turn.say("utter_step_acknowledged")

    steps = [*steps_from_slot(turn.get("steps_tried")), step]
    facts = merge_facts(fresh if fresh is not None else record, turn.tracker.slots)
    following = next_finding(facts, steps, table)
    turn.set(
        steps_tried=[s.to_slot() for s in steps],
        current_finding=following.code if following else None,
    )
    if fresh is not None and fresh != record:
        turn.set(**{RECORD_SLOT: fresh.to_dict()})  # later turns see it
    return True


async def wrap_up(turn: Turn) -> None:
    """Say where things stand after the walk and count the outcome."""
    steps = steps_from_slot(turn.get("steps_tried"))
    if turn.get("findings"):
        left = unresolved(steps)
        if left:
            wait = longest_wait(steps, default_rules()) or DEFAULT_WAIT_DAYS
            turn.say("utter_wrapup_pending", pending=len(left), wait_days=wait)
        else:
            turn.say("utter_wrapup_resolved")
    turn.set(**{UNFINISHED_SLOT: False})
    await record_outcome(turn.tracker, "resolved_by_bot")


# Unclear answers to the rating question before the bot stops asking.
RATING_TRIES = 2


def read_rating(turn: Turn) -> Optional[str]:
    """The answer to the rating question as text, or None for a digression."""
    return extract_answer(turn.tracker, RATING_SLOT, parse_rating).get(RATING_SLOT)


async def rate(turn: Turn, text: str) -> bool:
    """Take a 1-5 rating or "skip"; False when it must be asked again (once)."""
    rating = parse_rating(text)
    if rating is Reply.SKIP:
        turn.say("utter_rating_skipped")
        turn.set(**{RATING_SLOT: "skipped"})
        return True
    if not isinstance(rating, int):
        unclear = int(turn.get("rating_unclear") or 0) + 1
        if unclear >= RATING_TRIES:
            # Asking a third time would be nagging: no rating this time.
            turn.say("utter_rating_given_up")
            turn.set(**{RATING_SLOT: "skipped"})
            turn.clear("rating_unclear")
            return True
        turn.say("utter_rating_unclear")
        turn.set(**{RATING_SLOT: None, "rating_unclear": unclear})
        return False
    try:
        await run_blocking(case_store().record_rating, turn.tracker.sender_id, rating)
    except (StoreUnavailable, asyncio.TimeoutError) as error:
        logger.warning("could not record rating: %s", error or "timeout")
    turn.say("utter_rating_thanks")
    turn.set(**{RATING_SLOT: rating})
    return True
