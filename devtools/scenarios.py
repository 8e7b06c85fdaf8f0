"""Conversations the end-to-end tests and the story recorder both run."""

from __future__ import annotations

from typing import Dict, List

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
MAX_TURNS = 25


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
        last = said[-1] if said else ""
        if last in ANSWERS:
            bot.say(sender, ANSWERS[last])
        elif last in ("utter_ask_step_done", "utter_ask_step_ack"):
            bot.say(sender, step_answer)
        elif last == "utter_ask_satisfaction":
            bot.say(sender, "5")
        else:
            return said
    raise AssertionError(
        f"{sender}: no end after {MAX_TURNS} turns: {bot.utterances(sender)}"
    )
