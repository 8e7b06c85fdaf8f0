"""End to end: turns no story foresees, carried by the form, the rules and the fallbacks.

The dialogue has no learned policy (config.yml: rules and memoization of the
stories; TEDPolicy was dropped by measurement, docs/performance.md), so every
turn here is one the rules, the diagnosis form or a fallback must answer
sensibly: a question asked mid-form, an off-topic line, "算了", a greeting, an
answer to a question that was not asked.
"""

from __future__ import annotations

import pytest

from devtools.harness import Bot

pytestmark = pytest.mark.e2e

FIX_QUESTION = ["utter_ask_step_again", "utter_fix_no_bank_card", "utter_ask_step_done"]


def at_a_fix_step(bot: Bot, sender: str = "demo_no_bank_card") -> str:
    bot.reset(sender)
    assert bot.replies_to(sender, "借呗咋没了")[-1] == "utter_ask_step_done"
    return sender


def at_the_first_fact(bot: Bot, sender: str) -> str:
    bot.reset(sender)
    assert (
        bot.replies_to(sender, "我的支付宝里找不到借呗了")[-1]
        == "utter_ask_account_status"
    )
    return sender


def test_an_faq_in_the_middle_of_the_facts_is_answered_and_asked_again(
    bot: Bot,
) -> None:
    sender = at_the_first_fact(bot, "visitor_faq_mid_facts")
    assert bot.replies_to(sender, "借呗利息怎么算") == [
        "utter_faq/jiebei_interest",
        "utter_ask_account_status",
    ]
    assert bot.replies_to(sender, "正常") == ["utter_ask_real_name_verified"]


def test_an_off_topic_line_at_a_fix_step(bot: Bot) -> None:
    sender = at_a_fix_step(bot)
    assert bot.replies_to(sender, "明天北京天气怎么样") == [
        "utter_out_of_scope",
        *FIX_QUESTION,
    ]
    assert bot.replies_to(sender, "绑好了")[0] == "utter_recheck_pending"


def test_a_greeting_mid_flow_is_greeted_and_the_question_stays(bot: Bot) -> None:
    sender = at_a_fix_step(bot)
    # 你好 holds a 好: once it answered "完成了吗?" as done
    assert bot.replies_to(sender, "你好") == ["utter_greet", *FIX_QUESTION]
    assert bot.replies_to(sender, "没做成")[0] == "utter_fix_alt_no_bank_card"
    # ... and it once rated 4 stars
    assert bot.replies_to(sender, "你好") == ["utter_greet", "utter_ask_satisfaction"]
    assert bot.replies_to(sender, "5") == ["utter_rating_thanks"]


def test_never_mind_in_the_facts_pauses_and_continue_goes_on(bot: Bot) -> None:
    sender = at_the_first_fact(bot, "visitor_never_mind")
    assert bot.replies_to(sender, "正常") == ["utter_ask_real_name_verified"]
    assert bot.replies_to(sender, "算了") == ["utter_diagnosis_paused"]
    assert bot.tracker(sender)["active_loop"] == {}
    # utter_diagnosis_paused says: say 继续 to go on
    assert bot.replies_to(sender, "继续") == ["utter_ask_real_name_verified"]
    assert bot.replies_to(sender, "都完成了") == ["utter_ask_bank_cards"]


def test_never_mind_at_a_fix_step_gives_the_other_way_and_goes_on(bot: Bot) -> None:
    sender = at_a_fix_step(bot)
    assert bot.replies_to(sender, "算了") == [
        "utter_fix_alt_no_bank_card",
        "utter_wrapup_pending",
        "utter_ask_satisfaction",
    ]


def test_a_fact_told_at_a_fix_step_is_not_taken_for_done(bot: Bot) -> None:
    sender = at_a_fix_step(bot)
    assert bot.replies_to(sender, "我芝麻分六百多") == [
        "utter_step_answer_hint",
        *FIX_QUESTION,
    ]
    assert "utter_recheck_pending" in bot.replies_to(sender, "绑好了")


def test_an_answer_to_a_question_not_asked_in_the_facts(bot: Bot) -> None:
    sender = at_the_first_fact(bot, "visitor_wrong_answer")
    assert bot.replies_to(sender, "我芝麻分六百多") == [
        "utter_answer_unclear",
        "utter_ask_account_status",
    ]


def test_a_new_complaint_in_the_facts_starts_over(bot: Bot) -> None:
    sender = at_the_first_fact(bot, "visitor_new_complaint")
    assert bot.replies_to(sender, "借呗额度突然降了很多") == [
        "utter_situation_quota",
        "utter_ask_intro",
        "utter_ask_account_status",
    ]


@pytest.mark.parametrize("text", ["好的", "不用了", "完成了"])
def test_yes_or_no_when_nothing_was_asked(bot: Bot, text: str) -> None:
    sender = "demo_healthy"
    bot.reset(sender)
    bot.say(sender, "我的支付宝里找不到借呗了")
    assert bot.replies_to(sender, "5") == ["utter_rating_thanks"]
    assert bot.replies_to(sender, text) == ["utter_anything_else"]


def test_a_rating_when_none_was_asked_is_not_understood_politely(bot: Bot) -> None:
    sender = "visitor_stray_rating"
    bot.reset(sender)
    assert bot.replies_to(sender, "5")[-1] in (
        "utter_ask_rephrase",
        "utter_clarify_intro",
    )
