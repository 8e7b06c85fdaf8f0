"""Start a diagnosis, gather the facts (store first, then the user), diagnose."""

from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common.accounts import identified_account, lookup
from actions.common.facts import current_facts, kept_record, record_slot
from actions.common.forms import extract_answer
from actions.common.intents import SITUATIONS, latest_intent
from actions.diagnosis.engine import default_rules
from actions.diagnosis.enums import LookupStatus, Reply
from actions.diagnosis.questions import ASKED_BY_NAME, questions_left

# Slots of one walk through the fixes, cleared when a new diagnosis starts.
WALK_SLOTS = (
    "findings",
    "current_finding",
    "step_prompted",
    "steps_tried",
    "step_done",
    "satisfaction",
    "rating_unclear",
    "case_id",
    # Carried over from an old session, it would make the next form read the
    # new complaint as the answer to the old question.
    "requested_slot",
)


class ActionStartDiagnosis(Action):
    """Looks the account up, or prepares to ask; the facts form follows."""

    def name(self) -> Text:
        """Name in the domain."""
        return "action_start_diagnosis"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """Says what happens next and keeps the store's record, if any."""
        intent = latest_intent(tracker)
        if intent in SITUATIONS:
            dispatcher.utter_message(response=SITUATIONS[intent])
        events: List[EventType] = [SlotSet(slot, None) for slot in WALK_SLOTS]
        events.append(SlotSet("problem_text", tracker.latest_message.get("text")))

        account_id = identified_account(tracker)
        result = await lookup(account_id)
        if result.status is LookupStatus.FOUND and result.facts is not None:
            dispatcher.utter_message(
                response="utter_lookup_found", account_id=account_id
            )
            events += [
                SlotSet("account_id", account_id),
                SlotSet("facts_source", "store"),
            ]
        elif result.status is LookupStatus.UNAVAILABLE:
            dispatcher.utter_message(response="utter_lookup_unavailable")
            events += [
                SlotSet("facts_source", "unavailable"),
                SlotSet("account_id", None),
            ]
        else:
            dispatcher.utter_message(response="utter_ask_intro")
            events += [SlotSet("facts_source", "user"), SlotSet("account_id", None)]
        # The record of this diagnosis's account; none clears an earlier one.
        events += [SlotSet(k, v) for k, v in record_slot(result.facts).items()]
        return events


YES_NO_INTENTS = {"affirm": True, "deny": False}


class ValidateFactsForm(FormValidationAction):
    """Reads free Chinese answers ("六百多", "绑了一张") into typed facts.

    Extraction and validation follow the declared questions (ASKED_FACTS in
    actions/diagnosis/questions.py) rather than one extract_/validate_ method
    per slot.
    """

    def name(self) -> Text:
        """Name in the domain."""
        return "validate_facts_form"

    async def required_slots(
        self,
        domain_slots: List[Text],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> List[Text]:
        """The questions the store's record leaves open, less those skipped."""
        skipped = tracker.get_slot("facts_skipped") or []
        left = questions_left(kept_record(tracker), skipped)
        return [slot for slot in domain_slots if slot in left]

    async def get_extraction_events(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """Fill the asked-for fact from the latest message (see extract_answer)."""
        slot = tracker.get_slot("requested_slot")
        if slot not in ASKED_BY_NAME:
            return []
        extracted = extract_answer(tracker, slot, ASKED_BY_NAME[slot].parse)
        tracker.slots.update(extracted)
        return [SlotSet(name, value) for name, value in extracted.items()]

    async def get_validation_events(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """Validate every fact set since the user's last message."""
        events: List[EventType] = []
        for slot, value in tracker.slots_to_validate().items():
            result = (
                self.read(slot, value, dispatcher, tracker)
                if slot in ASKED_BY_NAME
                else {slot: value}
            )
            events += [SlotSet(name, v) for name, v in result.items()]
            tracker.slots.update(result)
        return events

    @staticmethod
    def read(
        slot: str, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker
    ) -> Dict[Text, Any]:
        """Typed value, a skip ("不知道"), or None with a request to say it again."""
        if value is None or isinstance(value, bool | int):
            return {slot: value}  # already read
        asked = ASKED_BY_NAME[slot]
        parsed = asked.parse(str(value))
        if parsed is None and asked.yes_no:
            parsed = YES_NO_INTENTS.get(latest_intent(tracker))
        if parsed is Reply.SKIP:
            skipped = list(tracker.get_slot("facts_skipped") or [])
            return {slot: None, "facts_skipped": [*skipped, slot]}
        if parsed is None and tracker.get_slot("requested_slot") == slot:
            # Only an answer to our question is worth a "please say again";
            # text picked up when the form starts was not an answer.
            dispatcher.utter_message(response="utter_answer_unclear")
        return {slot: parsed}


class ActionDiagnose(Action):
    """Runs the engine and tells the user what it found, most important first."""

    def name(self) -> Text:
        """Name in the domain."""
        return "action_diagnose"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """Sets `findings` and the first finding to walk through."""
        diagnosis = default_rules().diagnose(current_facts(tracker))
        if not diagnosis.findings:
            partial = set(diagnosis.unknown_facts) & set(ASKED_BY_NAME)
            dispatcher.utter_message(
                response="utter_no_single_cause_partial"
                if partial
                else "utter_no_single_cause"
            )
            return [SlotSet("findings", []), SlotSet("current_finding", None)]
        dispatcher.utter_message(
            response="utter_diagnosis_intro", count=len(diagnosis.findings)
        )
        for finding in diagnosis.findings:
            dispatcher.utter_message(response=finding.explanation)
        dispatcher.utter_message(response="utter_diagnosis_walk_intro")
        return [
            SlotSet("findings", list(diagnosis.codes)),
            SlotSet("current_finding", diagnosis.findings[0].code),
            SlotSet("steps_tried", []),
        ]
