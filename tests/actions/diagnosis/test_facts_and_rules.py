"""The facts format and the rule table refuse bad input with a clear message."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Dict

import pytest
import yaml

from actions.diagnosis.engine import DEFAULT_RULES, load_rules, parse_rules
from actions.diagnosis.errors import FactsError, RulesError
from actions.diagnosis.facts import AccountFacts, AccountStatus, parse_facts


def test_a_full_record_round_trips() -> None:
    record = {
        "schema_version": 1,
        "account_status": "restricted",
        "real_name_verified": True,
        "bank_cards": 3,
        "sesame_score": 950,
        "debt_ratio": 0,
    }
    facts = parse_facts(record)
    assert facts.account_status is AccountStatus.RESTRICTED
    assert facts.debt_ratio == 0.0 and isinstance(facts.debt_ratio, float)
    assert facts.to_dict() == {**record, "debt_ratio": 0.0}
    assert parse_facts(facts.to_dict()) == facts


def test_missing_fields_are_unknown() -> None:
    assert parse_facts({}) == AccountFacts()
    assert parse_facts({"bank_cards": None}).bank_cards is None


@pytest.mark.parametrize(
    ("record", "field", "words"),
    [
        ({"sesame": 700}, "sesame", "unknown field"),
        ({"sesame_score": 349}, "sesame_score", "at least 350"),
        ({"sesame_score": 951}, "sesame_score", "at most 950"),
        ({"sesame_score": "700"}, "sesame_score", "must be a number"),
        ({"sesame_score": 700.5}, "sesame_score", "whole number"),
        ({"bank_cards": True}, "bank_cards", "must be a number"),
        ({"bank_cards": -1}, "bank_cards", "at least 0"),
        ({"debt_ratio": -0.1}, "debt_ratio", "at least 0"),
        ({"debt_ratio": float("nan")}, "debt_ratio", "finite"),
        ({"real_name_verified": "yes"}, "real_name_verified", "true or false"),
        ({"real_name_verified": 1}, "real_name_verified", "true or false"),
        ({"account_status": "closed"}, "account_status", "must be one of"),
        ({"account_status": 1}, "account_status", "must be one of"),
        ({"schema_version": 2}, "schema_version", "unsupported version"),
        ({"schema_version": True}, "schema_version", "unsupported version"),
    ],
)
def test_bad_records_name_the_field(
    record: Dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(FactsError) as caught:
        parse_facts(record)
    assert caught.value.field == field
    assert words in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_record_must_be_an_object() -> None:
    with pytest.raises(FactsError, match="JSON object"):
        parse_facts([1, 2])  # type: ignore[arg-type]


def _table() -> Dict[str, Any]:
    loaded: Dict[str, Any] = yaml.safe_load(DEFAULT_RULES.read_text(encoding="utf-8"))
    return loaded


def _with(change: Any) -> Dict[str, Any]:
    table = copy.deepcopy(_table())
    change(table)
    return table


def _first_cause(table: Dict[str, Any]) -> Dict[str, Any]:
    cause: Dict[str, Any] = table["causes"][0]
    return cause


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (
            lambda t: _first_cause(t)["when"].update(fact="acount_status"),
            "unknown fact 'acount_status'",
        ),
        (lambda t: _first_cause(t)["when"].update(op="equals"), "unknown operator"),
        (lambda t: _first_cause(t)["when"].update(value="closed"), "must be one of"),
        (lambda t: _first_cause(t)["when"].update(op="lt"), "does not apply"),
        (
            lambda t: t["causes"][4]["when"].update(value="$no_such"),
            "unknown threshold",
        ),
        (
            lambda t: _first_cause(t).update(code="account_melted"),
            "not a known cause code",
        ),
        (lambda t: _first_cause(t).update(group="misc"), "not in groups"),
        (lambda t: _first_cause(t).update(severity="fatal"), "severity"),
        (lambda t: _first_cause(t).update(fix_kind="later"), "fix_kind"),
        (lambda t: _first_cause(t).update(user_fixable=False), "not user-fixable"),
        (lambda t: _first_cause(t).update(fix_steps=[]), "non-empty list"),
        (lambda t: _first_cause(t).update(fix_steps=["fix it"]), "not a response name"),
        (
            lambda t: _first_cause(t).update(resolved_by={"account_status": "fine"}),
            "resolved_by",
        ),
        (lambda t: _first_cause(t).update(wait_days=0), "wait_days"),
        (lambda t: _first_cause(t).update(colour="red"), "unknown keys"),
        (
            lambda t: t["causes"].append(copy.deepcopy(t["causes"][0])),
            "duplicate cause codes",
        ),
        (lambda t: t["causes"].pop(), "no row for cause codes"),
        (lambda t: t["thresholds"].update(sesame_score_low="600"), "thresholds"),
        (lambda t: t.update(version=2), "version"),
    ],
)
def test_malformed_tables_are_refused_at_load(change: Any, words: str) -> None:
    with pytest.raises(RulesError, match=words):
        parse_rules(_with(change))


def test_the_shipped_table_loads() -> None:
    table = load_rules()
    assert table.thresholds["sesame_score_low"] == 600
    assert len(table.rules) == 13


def test_unreadable_table_is_a_rules_error(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="cannot read"):
        load_rules(tmp_path / "missing.yml")
    broken = tmp_path / "broken.yml"
    broken.write_text("causes: [\n")
    with pytest.raises(RulesError, match="not valid YAML"):
        load_rules(broken)
