"""Low-confidence fallback: offer the most likely topics as buttons."""

from __future__ import annotations

from typing import Any, Dict, Iterable, List

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

# How many topics to offer, and the least confidence worth offering.
MAX_CHOICES = 3
MIN_CONFIDENCE = 0.05
TITLE_PREFIX = "utter_intent_title_"
RETRIEVAL_INTENT = "faq"


def ranked_labels(parse_data: Dict[str, Any]) -> List[tuple[str, float]]:
    """Full labels (faq sub-intents expanded) with confidences, best first.

    A `faq` intent stands for its sub-intents: their confidences in the
    response selector's ranking are scaled by the faq intent's confidence.
    """
    labels: List[tuple[str, float]] = []
    selector = parse_data.get("response_selector", {}).get(RETRIEVAL_INTENT, {})
    for intent in parse_data.get("intent_ranking", []):
        name, confidence = intent.get("name"), float(intent.get("confidence", 0.0))
        if name == RETRIEVAL_INTENT:
            for response in selector.get("ranking", []):
                key = response.get("intent_response_key")
                if key:
                    labels.append((key, confidence * float(response["confidence"])))
        elif name:
            labels.append((name, confidence))
    return sorted(labels, key=lambda item: item[1], reverse=True)


def choices(
    parse_data: Dict[str, Any], titled: Iterable[str], limit: int = MAX_CHOICES
) -> List[str]:
    """The labels worth offering: known, likely enough, at most `limit` of them."""
    known = set(titled)
    picked = [
        label
        for label, confidence in ranked_labels(parse_data)
        if label in known and confidence >= MIN_CONFIDENCE
    ]
    return picked[:limit]


def _response_text(domain: Dict[str, Any], name: str) -> str | None:
    variations = domain.get("responses", {}).get(name) or []
    return variations[0].get("text") if variations else None


class ActionClarifyIntent(Action):
    """Asks "did you mean…" with a button for each of the top intents."""

    def name(self) -> str:
        """Name used in the domain and rules."""
        return "action_clarify_intent"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[str, Any],
    ) -> List[Dict[str, Any]]:
        """Sends the buttons; with nothing likely enough, asks to rephrase."""
        titled = [
            name[len(TITLE_PREFIX) :]
            for name in domain.get("responses", {})
            if name.startswith(TITLE_PREFIX)
        ]
        labels = choices(tracker.latest_message or {}, titled)
        if not labels:
            dispatcher.utter_message(response="utter_ask_rephrase")
            return []
        buttons = [
            {
                "title": _response_text(domain, TITLE_PREFIX + label) or label,
                "payload": f"/{label}",
            }
            for label in labels
        ]
        buttons.append(
            {
                "title": _response_text(domain, "utter_clarify_none_of_these") or "",
                "payload": "/out_of_scope",
            }
        )
        dispatcher.utter_message(response="utter_clarify_intro", buttons=buttons)
        return []
