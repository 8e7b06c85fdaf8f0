"""Conversations the end-to-end tests, the story recorder and the bench run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional

from devtools.harness import Bot

OPENING = "我的支付宝里找不到借呗了"
# What an anonymous user answers to each fact question (free Chinese).
ANSWERS: Dict[str, str] = {
    "utter_ask_account_status": "正常",
    "utter_ask_real_name_verified": "还没实名",
    "utter_ask_bank_cards": "绑了一张",
    "utter_ask_sesame_score": "六百多",
    "utter_ask_overdue_count": "没有逾期",
    "utter_ask_credit_inquiries_last_30d": "没申请过",
}
STEP_QUESTIONS = ("utter_ask_step_done", "utter_ask_step_ack")
RATING_QUESTION = "utter_ask_satisfaction"
MAX_TURNS = 25


def answer_to(question: str, step_answer: str = "/affirm") -> Optional[str]:
    """What the scripted user says to the bot's last response; None ends the walk."""
    if question in ANSWERS:
        return ANSWERS[question]
    if question in STEP_QUESTIONS:
        return step_answer
    if question == RATING_QUESTION:
        return "5"
    return None


def walk(
    bot: Bot, sender: str, opening: str = OPENING, step_answer: str = "/affirm"
) -> List[str]:
    """Open with a complaint, answer every question, finish with a rating of 5.

    Returns the names of all responses the bot sent.
    """
    bot.reset(sender)
    bot.say(sender, opening)
    for _ in range(MAX_TURNS):
        said = bot.utterances(sender)
        text = answer_to(said[-1] if said else "", step_answer)
        if text is None:
            return said
        bot.say(sender, text)
    raise AssertionError(
        f"{sender}: no end after {MAX_TURNS} turns: {bot.utterances(sender)}"
    )


# --- what a turn costs ---------------------------------------------------------


@dataclass(frozen=True)
class Turn:
    """One user message of a walk and what answering it cost."""

    kind: str
    text: str
    # Actions the action server ran (each an HTTP round trip with the tracker).
    action_calls: int
    # Actions Rasa predicted (each a run of the policies), action_listen included.
    predictions: int


def turn_kind(asked: str, said: List[str]) -> str:
    """The kind of a turn, from the question it answered and the bot's reply."""
    last = said[-1] if said else ""
    if not asked:
        return "opening, then a question" if last in ANSWERS else "opening, diagnosed"
    if asked in ANSWERS:
        return "fact answer" if last in ANSWERS else "last fact answer, diagnosed"
    if asked in STEP_QUESTIONS:
        return "step answer" if last in STEP_QUESTIONS else "last step answer, wrap-up"
    if asked == RATING_QUESTION:
        return "rating"
    return "other"


def costed_walk(bot: Bot, sender: str, opening: str = OPENING) -> List[Turn]:
    """`walk`, counting the action server's calls and Rasa's predictions per turn.

    Messages must be sent one at a time (the action server's count is global).
    """
    bot.reset(sender)
    turns: List[Turn] = []
    asked, text = "", opening
    for _ in range(MAX_TURNS):
        before_calls = bot.action_calls()
        said = bot.replies_to(sender, text)
        calls = bot.action_calls() - before_calls
        turns.append(
            Turn(turn_kind(asked, said), text, calls, _last_predictions(bot, sender))
        )
        asked = said[-1] if said else ""
        following = answer_to(asked)
        if following is None:
            return turns
        text = following
    raise AssertionError(f"{sender}: no end after {MAX_TURNS} turns")


def _last_predictions(bot: Bot, sender: str) -> int:
    events = bot.tracker(sender)["events"]
    users = [i for i, event in enumerate(events) if event.get("event") == "user"]
    since = events[users[-1] + 1 :] if users else events
    return sum(1 for event in since if event.get("event") == "action")
