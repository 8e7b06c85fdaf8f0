"""The diagnosis engine: every cause, combinations, order, thresholds."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest

from actions.diagnosis.engine import CAUSE_CODES, default_rules, diagnose
from actions.diagnosis.facts import AccountFacts, parse_facts
from actions.services.accounts import load_fixtures

HEALTHY: Dict[str, Any] = {
    "account_status": "normal",
    "real_name_verified": True,
    "phone_verified": True,
    "bank_cards": 2,
    "sesame_score": 700,
    "payments_last_30d": 30,
    "offline_payments_last_30d": 10,
    "identity_profile_complete": True,
    "overdue_count": 0,
    "high_risk_region": False,
    "credit_inquiries_last_30d": 1,
    "debt_ratio": 0.3,
    "app_version_outdated": False,
}


def codes(**changes: Any) -> List[str]:
    return list(diagnose(parse_facts({**HEALTHY, **changes})).codes)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, []),
        ({"account_status": "frozen"}, ["account_frozen"]),
        ({"account_status": "restricted"}, ["account_restricted"]),
        ({"account_status": "not_activated"}, ["account_not_activated"]),
        ({"real_name_verified": False}, ["real_name_incomplete"]),
        ({"phone_verified": False}, ["real_name_incomplete"]),
        (
            {"real_name_verified": False, "phone_verified": False},
            ["real_name_incomplete"],
        ),
        ({"bank_cards": 0}, ["no_bank_card"]),
        ({"identity_profile_complete": False}, ["identity_profile_incomplete"]),
        ({"sesame_score": 599}, ["low_sesame_score"]),
        ({"payments_last_30d": 4}, ["low_activity"]),
        ({"overdue_count": 1}, ["poor_credit_record"]),
        ({"debt_ratio": 0.71}, ["high_debt_ratio"]),
        ({"credit_inquiries_last_30d": 5}, ["frequent_credit_inquiries"]),
        ({"high_risk_region": True}, ["high_risk_region"]),
        ({"app_version_outdated": True}, ["app_outdated"]),
    ],
)
def test_each_cause_alone(changes: Dict[str, Any], expected: List[str]) -> None:
    assert codes(**changes) == expected


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        # thresholds are the documented defaults, at the boundary
        ({"sesame_score": 600}, []),
        ({"payments_last_30d": 5}, []),
        ({"credit_inquiries_last_30d": 4}, []),
        ({"debt_ratio": 0.7}, []),
        ({"overdue_count": 0}, []),
        ({"bank_cards": 1}, []),
        ({"sesame_score": 350}, ["low_sesame_score"]),
        ({"debt_ratio": 3.5}, ["high_debt_ratio"]),
    ],
)
def test_threshold_boundaries(changes: Dict[str, Any], expected: List[str]) -> None:
    assert codes(**changes) == expected


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        # account state first, then identity, then credit/risk, then profile
        (
            {"app_version_outdated": True, "account_status": "frozen", "bank_cards": 0},
            ["account_frozen", "no_bank_card", "app_outdated"],
        ),
        (
            {"payments_last_30d": 0, "sesame_score": 500, "real_name_verified": False},
            ["real_name_incomplete", "low_sesame_score", "low_activity"],
        ),
        (
            {
                "overdue_count": 3,
                "credit_inquiries_last_30d": 9,
                "debt_ratio": 0.95,
                "sesame_score": 520,
                "high_risk_region": True,
            },
            [
                "poor_credit_record",
                "high_risk_region",
                "frequent_credit_inquiries",
                "high_debt_ratio",
                "low_sesame_score",
            ],
        ),
        (
            {"account_status": "not_activated", "identity_profile_complete": False},
            ["account_not_activated", "identity_profile_incomplete"],
        ),
    ],
)
def test_combinations_are_ordered_by_importance(
    changes: Dict[str, Any], expected: List[str]
) -> None:
    assert codes(**changes) == expected


def test_all_thirteen_at_once_come_in_group_order() -> None:
    facts = parse_facts(
        {
            "account_status": "frozen",
            "real_name_verified": False,
            "bank_cards": 0,
            "identity_profile_complete": False,
            "sesame_score": 400,
            "payments_last_30d": 0,
            "overdue_count": 2,
            "debt_ratio": 2.0,
            "credit_inquiries_last_30d": 10,
            "high_risk_region": True,
            "app_version_outdated": True,
        }
    )
    found = diagnose(facts).findings
    groups = [f.group for f in found]
    assert groups == sorted(
        groups, key=["account", "identity", "credit", "profile"].index
    )
    # account_status holds one of its three problem states: 11 of 13 causes at once
    assert len(found) == 11


def test_unknown_facts_give_no_finding_and_are_reported() -> None:
    result = diagnose(AccountFacts())
    assert result.findings == ()
    assert result.outcome == "no_single_cause"
    assert "sesame_score" in result.unknown_facts
    assert "offline_payments_last_30d" not in result.unknown_facts  # no rule reads it


def test_healthy_account_is_the_honest_no_single_cause() -> None:
    result = diagnose(parse_facts(HEALTHY))
    assert result.outcome == "no_single_cause"
    assert result.unknown_facts == ()


@pytest.mark.parametrize(
    ("code", "kind", "fixable", "wait"),
    [
        ("account_frozen", "now", True, 3),
        ("real_name_incomplete", "now", True, None),
        ("no_bank_card", "now", True, None),
        ("app_outdated", "now", True, None),
        ("low_sesame_score", "over_time", True, 60),
        ("frequent_credit_inquiries", "wait", False, 30),
        ("high_risk_region", "wait", False, None),
    ],
)
def test_findings_carry_fixability_and_waits(
    code: str, kind: str, fixable: bool, wait: Any
) -> None:
    finding = default_rules().finding(code)
    assert (finding.kind, finding.user_fixable, finding.wait_days) == (
        kind,
        fixable,
        wait,
    )
    assert finding.fix_steps and all(s.startswith("utter_") for s in finding.fix_steps)


def test_every_fixture_account_shows_what_its_name_says() -> None:
    fixtures = load_fixtures()
    for code in CAUSE_CODES:
        assert diagnose(fixtures[f"demo_{code}"]).codes == (code,), code
    assert diagnose(fixtures["demo_healthy"]).codes == ()
    assert len(diagnose(fixtures["demo_multi_new_user"]).codes) >= 3
    assert len(diagnose(fixtures["demo_multi_credit"]).codes) >= 3
