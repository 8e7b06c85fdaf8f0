"""Start a diagnosis, gather the facts (store first, then the user), diagnose."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Text

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.diagnosis.answers import (
    ASKED_FACTS,
    SKIP,
    Answer,
    answers_to_facts,
    is_unknown,
    parse_account_status,
    parse_count,
    parse_overdue,
    parse_sesame_score,
    parse_short_yes_no,
)
from actions.diagnosis.engine import default_rules
from actions.diagnosis.facts import AccountFacts
from actions.forms_common import extract_answer, latest_intent
from actions.lookup import FOUND, UNAVAILABLE, identified_account, lookup

SITUATIONS = {
    "jiebei_entry_missing": "utter_situation_entry_missing",
    "jiebei_cannot_open": "utter_situation_cannot_open",
    "jiebei_closed": "utter_situation_closed",
    "jiebei_cannot_borrow": "utter_situation_cannot_borrow",
    "jiebei_quota": "utter_situation_quota",
}
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


def facts_to_slots(facts: AccountFacts) -> Dict[str, Any]:
    """The asked-for slots that a store record already answers."""
    real_name: Optional[bool] = None
    if facts.real_name_verified is not None or facts.phone_verified is not None:
        real_name = bool(facts.real_name_verified) and facts.phone_verified is not False
    return {
        "account_status": facts.get("account_status"),
        "real_name_verified": real_name,
        "bank_cards": facts.bank_cards,
        "sesame_score": facts.sesame_score,
        "overdue_count": facts.overdue_count,
        "credit_inquiries_last_30d": facts.credit_inquiries_last_30d,
    }


async def current_facts(
    tracker: Tracker, stored: Optional[AccountFacts] = None
) -> AccountFacts:
    """What we know now: the store's record plus the user's answers.

    The store is the authority for what it knows; answers fill its gaps. The
    record is re-read unless the caller has just read it (`stored`).
    """
    answers = answers_to_facts(tracker.slots)
    if tracker.get_slot("facts_source") != "store":
        return answers
    if stored is None:
        result = await lookup(identified_account(tracker))
        if result.status != FOUND or result.facts is None:
            return answers
        stored = result.facts
    gaps = {name: answers.get(name) for name in answers.known()}
    known = set(stored.known())
    return stored.updated({k: v for k, v in gaps.items() if k not in known})


class ActionStartDiagnosis(Action):
    """Looks the account up, or prepares to ask; the facts form follows."""

    def name(self) -> Text:
        """Name in the domain."""
        return "action_start_diagnosis"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """Says what happens next and fills what the store knows."""
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        if intent in SITUATIONS:
            dispatcher.utter_message(response=SITUATIONS[intent])
        events: List[EventType] = [SlotSet(slot, None) for slot in WALK_SLOTS]
        events.append(SlotSet("problem_text", tracker.latest_message.get("text")))

        account_id = identified_account(tracker)
        result = await lookup(account_id)
        if result.status == FOUND and result.facts is not None:
            dispatcher.utter_message(
                response="utter_lookup_found", account_id=account_id
            )
            events += [
                SlotSet("account_id", account_id),
                SlotSet("facts_source", "store"),
            ]
            events += [SlotSet(k, v) for k, v in facts_to_slots(result.facts).items()]
            return events
        if result.status == UNAVAILABLE:
            dispatcher.utter_message(response="utter_lookup_unavailable")
            events.append(SlotSet("facts_source", "unavailable"))
        else:
            dispatcher.utter_message(response="utter_ask_intro")
            events.append(SlotSet("facts_source", "user"))
        events.append(SlotSet("account_id", None))
        return events


def _yes_no_answer(text: str) -> Answer:
    """Real-name question: a short yes/no, or "don't know"."""
    parsed = parse_short_yes_no(text)
    return SKIP if parsed is None and is_unknown(text) else parsed


# How each asked-for fact is read from a free answer. The store pre-fills typed
# values (int, bool, status code), which pass through unchanged.
ANSWER_PARSERS: Dict[str, Callable[[str], Answer]] = {
    "account_status": parse_account_status,
    "real_name_verified": _yes_no_answer,
    "bank_cards": parse_count,
    "sesame_score": parse_sesame_score,
    "overdue_count": parse_overdue,
    "credit_inquiries_last_30d": parse_count,
}
YES_NO_INTENTS = {"affirm": True, "deny": False}


class ValidateFactsForm(FormValidationAction):
    """Reads free Chinese answers ("六百多", "绑了一张") into typed facts.

    Extraction and validation are driven by ANSWER_PARSERS rather than one
    extract_/validate_ method per slot.
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
        """Every fact not yet known, except those the user said they don't know."""
        skipped = tracker.get_slot("facts_skipped") or []
        return [slot for slot in domain_slots if slot not in skipped]

    async def get_extraction_events(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """Fill the asked-for fact from the latest message (see extract_answer)."""
        slot = tracker.get_slot("requested_slot")
        if slot not in ANSWER_PARSERS:
            return []
        extracted = extract_answer(tracker, slot, ANSWER_PARSERS[slot])
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
                if slot in ANSWER_PARSERS
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
            return {slot: value}
        parsed = ANSWER_PARSERS[slot](str(value))
        if parsed is None and slot == "real_name_verified":
            parsed = YES_NO_INTENTS.get(latest_intent(tracker))
        if parsed == SKIP:
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
        diagnosis = default_rules().diagnose(await current_facts(tracker))
        if not diagnosis.findings:
            partial = set(diagnosis.unknown_facts) & set(ASKED_FACTS)
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
