"""End to end: a user back at a diagnosis left unfinished in an earlier session.

A new session starts here the way Rasa starts one when a message comes after
the session expired (domain/_shared.yml, session_config): by running
action_session_start, through the HTTP API, so no test has to wait an hour.
Rasa's own action carries the slots over, not the form.
"""

from __future__ import annotations

import pytest

from actions.services.cases import CaseStore
from devtools.harness import Bot, http

pytestmark = pytest.mark.e2e

OFFER = ["utter_resume_fix", "utter_cause_account_frozen", "utter_resume_question"]


def outcome(bot: Bot, sender: str) -> str:
    row = CaseStore(bot.env["ACCOUNT_DB_URL"]).outcome(sender)
    return str(row["outcome"]) if row else "none"


def left_at_a_fix_step(bot: Bot, sender: str = "demo_account_frozen") -> str:
    """A conversation that stops at the first fix step; then a new session."""
    bot.reset(sender)
    assert (
        bot.replies_to(sender, "我的支付宝里找不到借呗了")[-1] == "utter_ask_step_done"
    )
    http(
        "POST",
        bot.api(f"/conversations/{sender}/execute"),
        {"name": "action_session_start"},
    )
    assert bot.tracker(sender)["active_loop"] == {}
    return sender


def test_a_conversation_that_stops_mid_way_is_counted_as_abandoned(bot: Bot) -> None:
    sender = "demo_low_activity"
    bot.reset(sender)
    bot.say(sender, "借呗入口不见了")
    # no goodbye, no expiry noticed: counted all the same
    assert outcome(bot, sender) == "abandoned"


def test_a_returning_user_hears_where_we_left_off_and_goes_on(bot: Bot) -> None:
    sender = left_at_a_fix_step(bot)
    assert outcome(bot, sender) == "abandoned"
    assert bot.replies_to(sender, "你好") == OFFER
    assert bot.replies_to(sender, "继续") == [
        "utter_ask_step_again",
        "utter_fix_account_frozen",
        "utter_ask_step_done",
    ]
    assert bot.replies_to(sender, "申请好了")[-1] == "utter_ask_satisfaction"
    assert bot.replies_to(sender, "5") == ["utter_rating_thanks"]
    assert outcome(bot, sender) == "resolved_by_bot"


def test_a_returning_user_can_start_over(bot: Bot) -> None:
    sender = left_at_a_fix_step(bot)
    assert bot.replies_to(sender, "在吗") == OFFER
    again = bot.replies_to(sender, "重新开始")
    assert again[:2] == ["utter_start_over", "utter_lookup_found"]
    assert again[-2:] == ["utter_fix_account_frozen", "utter_ask_step_done"]


def test_a_fresh_complaint_is_diagnosed_afresh_without_an_offer(bot: Bot) -> None:
    sender = left_at_a_fix_step(bot)
    again = bot.replies_to(sender, "我的支付宝里找不到借呗了")
    assert "utter_resume_question" not in again
    assert "utter_ask_satisfaction" not in again
    assert again[:2] == ["utter_situation_entry_missing", "utter_lookup_found"]
    assert again[-1] == "utter_ask_step_done"


def test_goodbye_mid_way_then_back_in_the_same_session(bot: Bot) -> None:
    sender = "demo_account_frozen"
    bot.reset(sender)
    bot.say(sender, "我的支付宝里找不到借呗了")
    assert bot.replies_to(sender, "拜拜") == ["utter_goodbye"]
    assert bot.replies_to(sender, "你好") == OFFER


def test_a_finished_diagnosis_offers_nothing(bot: Bot) -> None:
    sender = "demo_healthy"
    bot.reset(sender)
    bot.say(sender, "我的支付宝里找不到借呗了")
    bot.say(sender, "5")
    http(
        "POST",
        bot.api(f"/conversations/{sender}/execute"),
        {"name": "action_session_start"},
    )
    assert bot.replies_to(sender, "你好") == ["utter_greet"]
    assert outcome(bot, sender) == "resolved_by_bot"
