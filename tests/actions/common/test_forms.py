"""Reading an answer when the message may be a digression."""

from __future__ import annotations

from typing import Any, Dict

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.common.forms import extract_answer
from actions.common.turn import Turn
from actions.diagnosis.answers import parse_sesame_score
from actions.fixes import read_rating, read_step_answer
from devtools.tracker import make_tracker


def asked(slot: str, text: str, intent: str) -> Any:
    return make_tracker(
        slots={"requested_slot": slot},
        latest_message={"text": text, "intent": {"name": intent}},
    )


@pytest.mark.parametrize(
    ("text", "intent", "expected"),
    [
        ("六百多", "inform", {"sesame_score": "六百多"}),
        # a clear answer counts even when the classifier guessed a digression
        ("六百多", "faq", {"sesame_score": "六百多"}),
        ("720", "goodbye", {"sesame_score": "720"}),
        # a digression that is no answer fills nothing: the form steps aside
        ("借呗利息怎么算", "faq", {}),
        ("转人工", "request_human", {}),
        # asking for a person is never an answer, even with answer-like words
        ("720，转人工", "request_human", {}),
        # an unclear non-digression goes on to validation, which asks again
        ("挺高的", "inform", {"sesame_score": "挺高的"}),
    ],
)
def test_extract_answer(text: str, intent: str, expected: Dict[str, Any]) -> None:
    assert (
        extract_answer(
            asked("sesame_score", text, intent), "sesame_score", parse_sesame_score
        )
        == expected
    )


def test_nothing_is_extracted_for_a_slot_not_asked() -> None:
    tracker = asked("bank_cards", "六百多", "inform")
    assert extract_answer(tracker, "sesame_score", parse_sesame_score) == {}


def test_step_answer_and_rating_extraction() -> None:
    yes = Turn(asked("step_answer", "弄完啦", "affirm"), CollectingDispatcher())
    assert read_step_answer(yes) == "弄完啦"
    faq = Turn(asked("step_answer", "借呗逾期了怎么办", "faq"), CollectingDispatcher())
    assert read_step_answer(faq) is None
    for words in ["借呗不见了，我要转人工", "没做成，转人工"]:
        person = Turn(
            asked("step_answer", words, "request_human"), CollectingDispatcher()
        )
        assert read_step_answer(person) is None
    five = Turn(asked("satisfaction", "5", "goodbye"), CollectingDispatcher())
    assert read_rating(five) == "5"
