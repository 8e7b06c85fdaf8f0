"""The diagnose skill: start a diagnosis, the facts form, the diagnosis."""

from __future__ import annotations

import time
from typing import Any, Dict

import pytest
import yaml
from rasa_sdk.executor import CollectingDispatcher

from actions.common.facts import RECORD_SLOT
from actions.diagnose import ActionDiagnose, ActionStartDiagnosis, ValidateFactsForm
from actions.diagnosis.questions import ASKED_FACTS
from actions.services.accounts import SqlAccountStore
from devtools.project import ROOT
from devtools.tracker import make_tracker
from tests.actions.support import DOMAIN, fixture_record, responses, slots, user


async def test_identified_account_is_looked_up(seeded_db_url: str) -> None:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(
        "demo_account_frozen", latest_message=user("借呗没了", "jiebei_entry_missing")
    )
    events = await ActionStartDiagnosis().run(dispatcher, tracker, DOMAIN)
    assert responses(dispatcher) == [
        "utter_situation_entry_missing",
        "utter_lookup_found",
    ]
    assert dispatcher.messages[1]["account_id"] == "demo_account_frozen"
    set_ = slots(events)
    assert set_["facts_source"] == "store" and set_["problem_text"] == "借呗没了"
    # the record is kept once, whole; the answer slots stay the user's
    assert set_[RECORD_SLOT] == fixture_record("demo_account_frozen")
    assert set_[RECORD_SLOT]["sesame_score"] == 712
    assert not set_.keys() & {asked.name for asked in ASKED_FACTS}


async def test_unknown_sender_is_asked(seeded_db_url: str) -> None:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker("someone", latest_message=user("额度没了", "jiebei_quota"))
    events = await ActionStartDiagnosis().run(dispatcher, tracker, DOMAIN)
    assert responses(dispatcher) == ["utter_situation_quota", "utter_ask_intro"]
    assert slots(events)["facts_source"] == "user"
    assert slots(events)[RECORD_SLOT] is None  # nothing known: the form asks
    assert "sesame_score" not in slots(events)


async def test_store_down_falls_back_to_asking(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACCOUNT_DB_URL", "postgresql://postgres@127.0.0.1:1/none")
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(
        "demo_account_frozen", latest_message=user("借呗没了", "jiebei_entry_missing")
    )
    events = await ActionStartDiagnosis().run(dispatcher, tracker, DOMAIN)
    assert responses(dispatcher)[-1] == "utter_lookup_unavailable"
    assert slots(events)["facts_source"] == "unavailable"
    assert slots(events)[RECORD_SLOT] is None


async def test_slow_store_times_out(
    monkeypatch: pytest.MonkeyPatch, seeded_db_url: str
) -> None:
    monkeypatch.setenv("ACCOUNT_LOOKUP_TIMEOUT", "0.2")

    def slow_get(self: SqlAccountStore, account_id: str) -> Any:
        time.sleep(1.5)
        raise AssertionError("should have timed out")

    monkeypatch.setattr(SqlAccountStore, "get", slow_get)
    dispatcher = CollectingDispatcher()
    started = time.monotonic()
    events = await ActionStartDiagnosis().run(
        dispatcher,
        make_tracker("demo_healthy", latest_message=user("x", "jiebei_quota")),
        DOMAIN,
    )
    assert time.monotonic() - started < 1.2
    assert slots(events)["facts_source"] == "unavailable"


@pytest.mark.parametrize(
    ("slot", "text", "expected"),
    [
        ("sesame_score", "六百多", 650),
        ("bank_cards", "绑了一张", 1),
        ("overdue_count", "没有逾期", 0),
        ("account_status", "被冻结了", "frozen"),
        ("real_name_verified", "还没实名", False),
        ("credit_inquiries_last_30d", "申请了七八次", 8),
    ],
)
async def test_facts_form_reads_free_answers(
    slot: str, text: str, expected: Any
) -> None:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(latest_message=user(text, "inform"))
    result = ValidateFactsForm.read(slot, text, dispatcher, tracker)
    assert result == {slot: expected}
    assert dispatcher.messages == []


async def test_facts_form_skips_unknown_and_reasks_unclear() -> None:
    form = ValidateFactsForm()
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(
        latest_message=user("不知道", "deny"),
        slots={"facts_skipped": ["bank_cards"], "requested_slot": "sesame_score"},
    )
    skipped = form.read("sesame_score", "不知道", dispatcher, tracker)
    assert skipped == {
        "sesame_score": None,
        "facts_skipped": ["bank_cards", "sesame_score"],
    }
    unclear = form.read("sesame_score", "很高吧", dispatcher, tracker)
    assert unclear == {"sesame_score": None}
    assert responses(dispatcher) == ["utter_answer_unclear"]
    required = await form.required_slots(
        ["bank_cards", "sesame_score"], dispatcher, tracker, DOMAIN
    )
    assert required == ["sesame_score"]


async def test_diagnose_identified_account_from_the_kept_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_store(self: SqlAccountStore, account_id: str) -> Any:
        raise AssertionError("the kept record should have been used")

    monkeypatch.setattr(SqlAccountStore, "get", no_store)
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(
        "demo_multi_credit",
        slots={"facts_source": "store", "account_id": "demo_multi_credit",
               RECORD_SLOT: fixture_record("demo_multi_credit")},
    )  # fmt: skip
    events = await ActionDiagnose().run(dispatcher, tracker, DOMAIN)
    said = responses(dispatcher)
    assert said[0] == "utter_diagnosis_intro" and dispatcher.messages[0]["count"] == 4
    assert said[1:5] == [
        "utter_cause_poor_credit_record",
        "utter_cause_frequent_credit_inquiries",
        "utter_cause_high_debt_ratio",
        "utter_cause_low_sesame_score",
    ]
    assert slots(events)["current_finding"] == "poor_credit_record"


async def test_diagnose_anonymous_answers_and_no_cause() -> None:
    dispatcher = CollectingDispatcher()
    answers = {"facts_source": "user", "account_status": "normal", "real_name_verified": True,
               "bank_cards": 2, "sesame_score": 700, "overdue_count": 0,
               "credit_inquiries_last_30d": 0}  # fmt: skip
    events = await ActionDiagnose().run(
        dispatcher, make_tracker("anon", slots=answers), DOMAIN
    )
    assert responses(dispatcher) == ["utter_no_single_cause"]
    assert slots(events)["current_finding"] is None
    partial = CollectingDispatcher()
    await ActionDiagnose().run(
        partial, make_tracker("anon", slots={"facts_source": "user"}), DOMAIN
    )
    assert responses(partial) == ["utter_no_single_cause_partial"]


async def test_facts_form_runs_extraction_and_validation_from_its_table() -> None:
    # What rasa_sdk calls: the answer to the asked-for slot is read and typed.
    tracker = make_tracker(
        slots={"requested_slot": "sesame_score", "facts_source": "user"},
        latest_message=user("大概六百八吧", "inform"),
        events=[{"event": "user", "text": "大概六百八吧"}],
    )
    events = await ValidateFactsForm().run(CollectingDispatcher(), tracker, DOMAIN)
    assert {"event": "slot", "name": "sesame_score", "value": 680} in [
        {k: e.get(k) for k in ("event", "name", "value")} for e in events
    ]


async def test_facts_form_asks_only_what_the_kept_record_lacks() -> None:
    tracker = make_tracker(
        slots={RECORD_SLOT: fixture_record("demo_partial_facts"),
               "facts_skipped": ["overdue_count"]},
    )  # fmt: skip
    required = await ValidateFactsForm().required_slots(
        [asked.name for asked in ASKED_FACTS], CollectingDispatcher(), tracker, DOMAIN
    )
    # the record knows the status and the cards; the user skipped overdue
    assert required == [
        "real_name_verified",
        "sesame_score",
        "credit_inquiries_last_30d",
    ]
    full = make_tracker(slots={RECORD_SLOT: fixture_record("demo_healthy")})
    assert (
        await ValidateFactsForm().required_slots(
            [asked.name for asked in ASKED_FACTS], CollectingDispatcher(), full, DOMAIN
        )
        == []
    )


def _domain_part(key: str) -> Dict[str, Any]:
    """One top-level mapping (slots, forms, responses) merged over domain/*.yml."""
    merged: Dict[str, Any] = {}
    for path in sorted((ROOT / "domain").glob("*.yml")):
        merged.update(
            (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get(key) or {}
        )
    return merged


def test_form_parser_and_domain_follow_the_declared_questions() -> None:
    names = [asked.name for asked in ASKED_FACTS]
    # the form asks exactly the declared questions, in the declared order
    assert _domain_part("forms")["facts_form"]["required_slots"] == names
    domain_slots = _domain_part("slots")
    responses_ = _domain_part("responses")
    for name in names:
        slot = domain_slots[name]
        assert slot["influence_conversation"] is False, name
        assert {"type": "custom"} in slot["mappings"], name  # the action fills it
        assert f"utter_ask_{name}" in responses_, name
    assert domain_slots[RECORD_SLOT]["influence_conversation"] is False


# Not a short reply: the yes/no question reads those as yes or no first.
DONT_KNOW = "这个我也不知道呢"


@pytest.mark.parametrize("asked", ASKED_FACTS, ids=lambda asked: asked.name)
async def test_the_answer_parser_reads_every_declared_question(asked: Any) -> None:
    # What rasa_sdk calls for each question: extraction, then validation.
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(
        slots={"requested_slot": asked.name},
        latest_message=user(DONT_KNOW, "inform"),
        events=[{"event": "user", "text": DONT_KNOW}],
    )
    domain = {"forms": _domain_part("forms")}
    events = await ValidateFactsForm().run(dispatcher, tracker, domain)
    set_ = slots(events)
    assert set_[asked.name] is None and set_["facts_skipped"] == [asked.name]
    assert set_["requested_slot"] != asked.name  # skipped: not asked again
