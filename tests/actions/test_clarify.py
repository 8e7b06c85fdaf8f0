"""The low-confidence "did you mean" action."""

from __future__ import annotations

from typing import Any, Dict

from rasa_sdk.executor import CollectingDispatcher

from actions.clarify import ActionClarifyIntent, choices, ranked_labels
from devtools.tracker import make_tracker


def parse(
    intents: Dict[str, float], faq: Dict[str, float] | None = None
) -> Dict[str, Any]:
    ranking = [{"name": n, "confidence": c} for n, c in intents.items()]
    data: Dict[str, Any] = {"intent": ranking[0], "intent_ranking": ranking}
    if faq is not None:
        data["response_selector"] = {
            "faq": {
                "ranking": [
                    {"intent_response_key": k, "confidence": c} for k, c in faq.items()
                ]
            }
        }
    return data


def test_faq_is_expanded_into_its_sub_intents() -> None:
    data = parse(
        {"faq": 0.6, "jiebei_quota": 0.3},
        faq={"faq/jiebei_repayment": 0.9, "faq/jiebei_overdue": 0.1},
    )
    labels = [label for label, _ in ranked_labels(data)]
    assert labels == ["faq/jiebei_repayment", "jiebei_quota", "faq/jiebei_overdue"]


def test_choices_skip_unknown_and_unlikely_labels() -> None:
    data = parse(
        {"nlu_fallback": 0.5, "jiebei_quota": 0.3, "greet": 0.15, "deny": 0.01}
    )
    assert choices(data, titled=["jiebei_quota", "deny"]) == ["jiebei_quota"]


async def test_buttons_carry_titles_from_the_domain(
    domain: Dict[str, Any], dispatcher: CollectingDispatcher
) -> None:
    tracker = make_tracker(
        latest_message=parse(
            {"nlu_fallback": 0.45, "jiebei_quota": 0.4, "faq": 0.35},
            faq={"faq/jiebei_interest": 0.8, "faq/jiebei_term": 0.2},
        )
    )
    await ActionClarifyIntent().run(dispatcher, tracker, domain)
    [message] = dispatcher.messages
    assert message["response"] == "utter_clarify_intro"
    titles = [b["title"] for b in message["buttons"]]
    payloads = [b["payload"] for b in message["buttons"]]
    assert payloads == [
        "/jiebei_quota",
        "/faq/jiebei_interest",
        "/faq/jiebei_term",
        "/out_of_scope",
    ]
    assert (
        titles[0] == domain["responses"]["utter_intent_title_jiebei_quota"][0]["text"]
    )
    assert all(titles), "every button has a Chinese title"


async def test_nothing_likely_asks_to_rephrase(
    domain: Dict[str, Any], dispatcher: CollectingDispatcher
) -> None:
    tracker = make_tracker(latest_message=parse({"nlu_fallback": 0.9, "greet": 0.01}))
    await ActionClarifyIntent().run(dispatcher, tracker, domain)
    assert [m["response"] for m in dispatcher.messages] == ["utter_ask_rephrase"]
