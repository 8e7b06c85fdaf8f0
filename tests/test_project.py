"""Consistency of domain, data and tests: what a typo would break."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Set, Tuple

import yaml

from devtools.project import ROOT, load_domain, story_messages

CONTRACT_DOMAIN_INTENTS = {
    "jiebei_entry_missing",
    "jiebei_cannot_open",
    "jiebei_closed",
    "jiebei_cannot_borrow",
    "jiebei_quota",
    "jiebei_repayment",
    "jiebei_early_repayment",
    "jiebei_term",
    "jiebei_overdue",
    "jiebei_interest",
    "jiebei_disbursement",
    "jiebei_wangshangdai",
    "jiebei_vs_huabei",
    "jiebei_self_close",
    "credit_score",
    "account_identity",
    "jiebei_how_to_borrow",
    "jiebei_records",
    "out_of_scope",
}
CONTRACT_GENERAL_INTENTS = {
    "greet",
    "goodbye",
    "thank",
    "affirm",
    "deny",
    "inform",
    "request_human",
    "bot_challenge",
    "report_scam",
}


def nlu_examples(place: Path) -> List[Tuple[str, str]]:
    """(label, text) of every example in an NLU file, or in the files of a folder."""
    pairs = []
    for path in [place] if place.is_file() else sorted(place.rglob("*.yml")):
        for block in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get(
            "nlu", []
        ):
            if "intent" in block:
                for line in block["examples"].splitlines():
                    if line.strip():
                        pairs.append((block["intent"], line.strip()[2:].strip()))
    return pairs


def bare(label: str) -> str:
    return label.split("/", 1)[-1]


def test_every_contract_intent_is_trained_with_enough_examples() -> None:
    counts: Dict[str, int] = {}
    for label, _ in nlu_examples(ROOT / "data" / "nlu"):
        counts[bare(label)] = counts.get(bare(label), 0) + 1
    for intent in CONTRACT_DOMAIN_INTENTS:
        assert counts.get(intent, 0) >= 40, intent
    for intent in CONTRACT_GENERAL_INTENTS:
        assert counts.get(intent, 0) >= 20, intent


def test_held_out_examples_are_not_in_training() -> None:
    def key(text: str) -> str:
        return "".join(c for c in text if c.isalnum()).lower()

    train = {key(t) for _, t in nlu_examples(ROOT / "data" / "nlu")}
    test = nlu_examples(ROOT / "tests" / "nlu_test")
    assert len(test) >= 200
    leaked = [t for _, t in test if key(t) in train]
    assert leaked == []
    tested = {bare(label) for label, _ in test}
    assert CONTRACT_DOMAIN_INTENTS <= tested


def test_scam_stories_use_unseen_phrasings() -> None:
    # The scam stories test the classifier on words it was not trained on.
    def key(text: str) -> str:
        return "".join(c for c in text if c.isalnum()).lower()

    train = {key(t) for _, t in nlu_examples(ROOT / "data" / "nlu")}
    scams = [
        text
        for intent, text in story_messages(ROOT / "tests" / "stories")
        if intent == "report_scam"
    ]
    assert len(scams) >= 8
    assert len({key(t) for t in scams}) == len(scams)
    assert [t for t in scams if key(t) in train] == []


def test_every_faq_sub_intent_has_an_answer_and_a_title() -> None:
    domain = load_domain()
    responses: Dict[str, Any] = domain["responses"]
    faq = {
        label
        for label, _ in nlu_examples(ROOT / "data" / "nlu")
        if label.startswith("faq/")
    }
    assert len(faq) == 13
    for label in faq:
        assert f"utter_{label}" in responses, label
        assert f"utter_intent_title_{label}" in responses, label


def test_domain_lists_every_trained_intent() -> None:
    domain_intents: Set[str] = set(load_domain()["intents"])
    trained = {
        label.split("/", 1)[0] for label, _ in nlu_examples(ROOT / "data" / "nlu")
    }
    assert trained == domain_intents


def test_no_response_asks_for_secrets() -> None:
    # The bot may warn about passwords and SMS codes, never ask for them.
    asking = (
        "请提供密码",
        "告诉我验证码",
        "发送验证码给",
        "输入支付密码",
        "把验证码发",
    )
    for name, variations in load_domain()["responses"].items():
        for variation in variations:
            assert not any(a in variation.get("text", "") for a in asking), name


def test_every_response_the_code_and_rule_table_name_exists() -> None:
    import re

    responses = set(load_domain()["responses"])
    named: Set[str] = set()
    for path in [
        *(ROOT / "actions").rglob("*.py"),
        *(ROOT / "actions").rglob("*.yml"),
        *(ROOT / "bot_server").rglob("*.py"),
    ]:
        named |= set(re.findall(r"utter_[a-z0-9_/]+", path.read_text(encoding="utf-8")))
    named -= {"utter_intent_title_", "utter_message"}  # a prefix constant; the API
    missing = sorted(n for n in named if n not in responses)
    assert missing == []


def test_cause_texts_use_only_the_wait_days_variable() -> None:
    import re

    from actions.diagnosis.engine import default_rules

    responses = load_domain()["responses"]
    for rule in default_rules().rules:
        finding = rule.finding
        for name in (finding.explanation, finding.alternative, *finding.fix_steps):
            text = responses[name][0]["text"]
            variables = set(re.findall(r"\{(\w+)\}", text))
            assert variables <= {"wait_days"}, name
            if "wait_days" in variables:
                assert finding.wait_days, (
                    f"{name} says {{wait_days}} but the rule has none"
                )
