"""Walk the fixes one finding at a time, wrap up, and take the rating."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common.accounts import identified_account, lookup
from actions.common.blocking import run_blocking
from actions.common.facts import RECORD_SLOT, kept_record
from actions.common.forms import extract_answer
from actions.common.intents import SITUATIONS, latest_intent
from actions.common.outcomes import record_outcome
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

RECHECK_RESPONSES = {
    Recheck.CONFIRMED: "utter_recheck_confirmed",
    Recheck.PENDING: "utter_recheck_pending",
    Recheck.NOTED: "utter_recheck_noted",
}
DEFAULT_WAIT_DAYS = 30


def _current(tracker: Tracker) -> Optional[Finding]:
    code = tracker.get_slot("current_finding")
    return default_rules().finding(code) if code else None


ANSWER_INTENTS = {"affirm": True, "inform": True, "deny": False}


async def _reread_record(tracker: Tracker) -> Optional[AccountFacts]:
    """The store's record now, for the re-check; None when the store cannot say."""
    result = await lookup(identified_account(tracker))
    return result.facts if result.status is LookupStatus.FOUND else None


class ActionAskStepDone(Action):
    """Shows the current finding's fix steps and asks whether it is done."""

    def name(self) -> Text:
        """Rasa calls action_ask_<slot> to ask for a form slot."""
        return "action_ask_step_done"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """Full steps the first time; a short reminder after a digression."""
        finding = _current(tracker)
        if finding is None:
            return []
        if tracker.get_slot("step_prompted") == finding.code:
            dispatcher.utter_message(response="utter_ask_step_again")
            dispatcher.utter_message(
                response=finding.fix_steps[-1], wait_days=finding.wait_days
            )
        else:
            for response in finding.fix_steps:
                dispatcher.utter_message(response=response, wait_days=finding.wait_days)
        question = (
            "utter_ask_step_done"
            if finding.kind is FixKind.NOW
            else "utter_ask_step_ack"
        )
        dispatcher.utter_message(response=question)
        return [SlotSet("step_prompted", finding.code)]


class ValidateFixForm(FormValidationAction):
    """Takes the answer to "完成了吗?", re-checks, and moves to the next finding."""

    def name(self) -> Text:
        """Name in the domain."""
        return "validate_fix_form"

    async def required_slots(
        self,
        domain_slots: List[Text],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> List[Text]:
        """Ask while a finding is left; an empty list ends the walk."""
        return domain_slots if tracker.get_slot("current_finding") else []

    async def extract_step_done(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        """A yes/no intent answers; otherwise the text is read like other answers.

        A new complaint (我的支付宝里找不到借呗了) is no answer: nothing is
        extracted, the form rejects the turn and the rule for that complaint
        starts the diagnosis over (data/rules/diagnosis.yml).
        """
        if latest_intent(tracker) in SITUATIONS:
            return {}
        if tracker.get_slot("requested_slot") == "step_done":
            if latest_intent(tracker) in ANSWER_INTENTS:
                return {"step_done": tracker.latest_message.get("text") or "yes"}
        return extract_answer(tracker, "step_done", parse_short_yes_no)

    async def validate_step_done(
        self,
        value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[Text, Any]:
        """Record the step, say what the re-check found, pick the next finding."""
        finding = _current(tracker)
        if finding is None or tracker.get_slot("requested_slot") != "step_done":
            return {"step_done": None}  # the form is starting: nothing was asked yet
        said_yes = ANSWER_INTENTS.get(latest_intent(tracker))
        if said_yes is None:
            said_yes = parse_short_yes_no(str(value))
        if said_yes is None:
            dispatcher.utter_message(response="utter_step_answer_hint")
            return {"step_done": None}

        record = kept_record(tracker)
        fresh: Optional[AccountFacts] = None
        if said_yes and finding.kind is FixKind.NOW and record is not None:
            # "Done": the one time the store is read again, to re-check.
            fresh = await _reread_record(tracker)
        table = default_rules()
        step = answer_step(finding, said_yes, fresh, table)
        if step.answer is StepAnswer.CANNOT:
            dispatcher.utter_message(response=finding.alternative)
        elif step.answer is StepAnswer.DONE:
            dispatcher.utter_message(
                response=RECHECK_RESPONSES[step.recheck or Recheck.NOTED]
            )
        else:
            dispatcher.utter_message(response="utter_step_acknowledged")

        steps = [*steps_from_slot(tracker.get_slot("steps_tried")), step]
        facts = merge_facts(fresh if fresh is not None else record, tracker.slots)
        following = next_finding(facts, steps, table)
        result: Dict[Text, Any] = {
            "step_done": None,
            "steps_tried": [s.to_slot() for s in steps],
            "current_finding": following.code if following else None,
        }
        if fresh is not None and fresh != record:
            result[RECORD_SLOT] = fresh.to_dict()  # later turns see the fresher record
        return result


class ActionWrapUp(Action):
    """Says where things stand after the walk and counts the outcome."""

    def name(self) -> Text:
        """Name in the domain."""
        return "action_wrap_up"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """Resolved, or what is left and when to look again."""
        steps = steps_from_slot(tracker.get_slot("steps_tried"))
        if tracker.get_slot("findings"):
            left = unresolved(steps)
            if left:
                wait = longest_wait(steps, default_rules()) or DEFAULT_WAIT_DAYS
                dispatcher.utter_message(
                    response="utter_wrapup_pending", pending=len(left), wait_days=wait
                )
            else:
                dispatcher.utter_message(response="utter_wrapup_resolved")
        await record_outcome(tracker, "resolved_by_bot")
        return [SlotSet("satisfaction", None)]


# Unclear answers to the rating question before the bot stops asking.
RATING_TRIES = 2


class ValidateRatingForm(FormValidationAction):
    """Reads a 1-5 rating ("5", "五星", "很满意") and stores it."""

    def name(self) -> Text:
        """Name in the domain."""
        return "validate_rating_form"

    async def extract_satisfaction(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        """A rating is read from the text whatever the intent ("5" has none)."""
        return extract_answer(tracker, "satisfaction", parse_rating)

    async def validate_satisfaction(
        self,
        value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[Text, Any]:
        """Accepts 1-5 or "skip"; anything else is asked again, once."""
        if tracker.get_slot("requested_slot") != "satisfaction":
            return {"satisfaction": None}  # the form is starting: nothing was asked yet
        rating = parse_rating(str(value))
        if rating is Reply.SKIP:
            dispatcher.utter_message(response="utter_rating_skipped")
            return {"satisfaction": "skipped"}
        if not isinstance(rating, int):
            unclear = int(tracker.get_slot("rating_unclear") or 0) + 1
            if unclear >= RATING_TRIES:
                # Asking a third time would be nagging: no rating this time.
                dispatcher.utter_message(response="utter_rating_given_up")
                return {"satisfaction": "skipped", "rating_unclear": None}
            dispatcher.utter_message(response="utter_rating_unclear")
            return {"satisfaction": None, "rating_unclear": unclear}
        try:
            await run_blocking(case_store().record_rating, tracker.sender_id, rating)
        except (StoreUnavailable, asyncio.TimeoutError) as error:
            logger.warning("could not record rating: %s", error or "timeout")
        dispatcher.utter_message(response="utter_rating_thanks")
        return {"satisfaction": rating}
