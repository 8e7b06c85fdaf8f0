"""The handoff case carries the account facts the agent desk shows (web/static/agent/)."""

from __future__ import annotations

from actions.handoff import case_summary
from devtools.tracker import make_tracker


def test_the_case_has_the_record_and_the_users_answers() -> None:
    tracker = make_tracker(
        "demo_account_frozen",
        slots={
            "account_record": {
                "schema_version": 1,
                "account_status": "frozen",
                "sesame_score": 640,
            },
            "bank_cards": 0,  # the user's answer to a fact the record lacks
        },
    )
    facts = case_summary(tracker)["facts"]
    assert facts == {"account_status": "frozen", "sesame_score": 640, "bank_cards": 0}


def test_an_anonymous_user_without_answers_has_no_facts() -> None:
    assert case_summary(make_tracker("web-anonymous"))["facts"] == {}


def test_an_unreadable_record_gives_no_facts_and_still_a_case() -> None:
    tracker = make_tracker("x", slots={"account_record": {"sesame_score": "very high"}})
    summary = case_summary(tracker)
    assert summary["facts"] == {}
    assert summary["conversation_id"] == "x"
