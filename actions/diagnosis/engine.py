"""Evaluate the rule table (`rules.yml`) against an account's facts.

`load_rules` validates the whole table against the typed facts when it loads,
so a misspelt fact name, an unknown operator, a value of the wrong type or a
missing threshold fails at load (and in a test), never in front of a user.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import (
    Any,
    Callable,
    Dict,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Type,
    TypeVar,
)

import yaml

from actions.diagnosis.enums import FixKind, Severity
from actions.diagnosis.errors import FactsError, RulesError
from actions.diagnosis.facts import FACT_SPECS, AccountFacts, AccountStatus, check_value

DEFAULT_RULES = Path(__file__).with_name("rules.yml")

# The cause codes are a contract with support staff and the domain.
CAUSE_CODES = (
    "account_frozen",
    "account_restricted",
    "account_not_activated",
    "real_name_incomplete",
    "no_bank_card",
    "identity_profile_incomplete",
    "low_sesame_score",
    "low_activity",
    "poor_credit_record",
    "high_debt_ratio",
    "frequent_credit_inquiries",
    "high_risk_region",
    "app_outdated",
)
OPERATORS: Dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}
_ORDERING = {"lt", "le", "gt", "ge"}


@dataclass(frozen=True)
class Condition:
    """A validated condition tree: a leaf test or an all/any of conditions."""

    fact: Optional[str] = None
    op: Optional[str] = None
    value: Any = None
    all_of: Tuple[Condition, ...] = ()
    any_of: Tuple[Condition, ...] = ()

    def holds(self, facts: AccountFacts) -> bool:
        """True only when the facts show it; unknown facts never hold."""
        if self.all_of:
            return all(c.holds(facts) for c in self.all_of)
        if self.any_of:
            return any(c.holds(facts) for c in self.any_of)
        assert self.fact is not None and self.op is not None  # validated at load
        actual = facts.get(self.fact)
        return actual is not None and OPERATORS[self.op](actual, self.value)

    def facts_used(self) -> Tuple[str, ...]:
        """Every fact name the condition reads."""
        if self.fact:
            return (self.fact,)
        return tuple(
            name for child in self.all_of + self.any_of for name in child.facts_used()
        )


@dataclass(frozen=True)
class Finding:
    """One cause found for an account, with what the bot should do about it."""

    code: str
    group: str
    severity: Severity
    user_fixable: bool
    kind: FixKind
    explanation: str
    fix_steps: Tuple[str, ...]
    alternative: str
    wait_days: Optional[int] = None
    resolved_by: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        """JSON form for the CLI and the handoff summary."""
        return {
            "code": self.code,
            "group": self.group,
            "severity": self.severity.value,
            "user_fixable": self.user_fixable,
            "kind": self.kind.value,
            "explanation": self.explanation,
            "fix_steps": list(self.fix_steps),
            "alternative": self.alternative,
            "wait_days": self.wait_days,
        }


@dataclass(frozen=True)
class Rule:
    """A row of the table: when the condition holds, the finding applies."""

    finding: Finding
    when: Condition


@dataclass(frozen=True)
class Diagnosis:
    """The ordered findings, and which facts the rules needed but did not know."""

    findings: Tuple[Finding, ...]
    unknown_facts: Tuple[str, ...]

    @property
    def outcome(self) -> str:
        """Either causes_found, or no_single_cause (the honest answer when none)."""
        return "causes_found" if self.findings else "no_single_cause"

    @property
    def codes(self) -> Tuple[str, ...]:
        """Cause codes, most important first."""
        return tuple(f.code for f in self.findings)

    def to_dict(self) -> Dict[str, Any]:
        """The CLI's JSON output."""
        return {
            "outcome": self.outcome,
            "causes": [f.to_dict() for f in self.findings],
            "unknown_facts": list(self.unknown_facts),
        }


@dataclass(frozen=True)
class RuleTable:
    """The validated table: thresholds, group order and rules in priority order."""

    thresholds: Mapping[str, float]
    groups: Tuple[str, ...]
    rules: Tuple[Rule, ...]

    def finding(self, code: str) -> Finding:
        """The finding template of a cause code."""
        for rule in self.rules:
            if rule.finding.code == code:
                return rule.finding
        raise KeyError(code)

    def diagnose(self, facts: AccountFacts) -> Diagnosis:
        """All findings that the facts show, most important first."""
        found = [rule.finding for rule in self.rules if rule.when.holds(facts)]
        order = {group: index for index, group in enumerate(self.groups)}
        # sorted() is stable: rows keep their table order within a group.
        found.sort(key=lambda finding: order[finding.group])
        needed = {name for rule in self.rules for name in rule.when.facts_used()}
        unknown = tuple(n for n in FACT_SPECS if n in needed and facts.get(n) is None)
        return Diagnosis(tuple(found), unknown)


def _require(mapping: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in mapping:
        raise RulesError(f"{where}: missing '{key}'")
    return mapping[key]


E = TypeVar("E", bound=Enum)


def _member(vocabulary: Type[E], raw: Any, what: str) -> E:
    """The enum member a table value names, or a RulesError listing the choices."""
    try:
        return vocabulary(raw)
    except (ValueError, TypeError):
        choices = [member.value for member in vocabulary]
        raise RulesError(f"{what} must be one of {choices}") from None


def _parse_condition(
    raw: Any, thresholds: Mapping[str, float], where: str
) -> Condition:
    if not isinstance(raw, Mapping):
        raise RulesError(f"{where}: a condition must be a mapping")
    if set(raw) == {"all"} or set(raw) == {"any"}:
        key = next(iter(raw))
        children = raw[key]
        if not isinstance(children, list) or not children:
            raise RulesError(f"{where}: '{key}' needs a non-empty list")
        parsed = tuple(
            _parse_condition(child, thresholds, f"{where}.{key}[{i}]")
            for i, child in enumerate(children)
        )
        return Condition(all_of=parsed) if key == "all" else Condition(any_of=parsed)
    if set(raw) != {"fact", "op", "value"}:
        raise RulesError(
            f"{where}: expected fact/op/value or all/any, got {sorted(raw)}"
        )
    fact, op, value = raw["fact"], raw["op"], raw["value"]
    spec = FACT_SPECS.get(fact)
    if spec is None:
        raise RulesError(f"{where}: unknown fact '{fact}'")
    if op not in OPERATORS:
        raise RulesError(f"{where}: unknown operator '{op}'")
    if isinstance(value, str) and value.startswith("$"):
        if value[1:] not in thresholds:
            raise RulesError(f"{where}: unknown threshold '{value}'")
        value = thresholds[value[1:]]
    if op in _ORDERING and spec.kind in ("bool", "status"):
        raise RulesError(f"{where}: '{op}' does not apply to {spec.kind} fact '{fact}'")
    try:
        typed = check_value(spec, value)
    except FactsError as error:
        # A threshold may sit just outside a fact's range (e.g. "more than 0").
        if spec.kind in ("int", "float") and isinstance(value, int | float):
            typed = value
        else:
            raise RulesError(f"{where}: {error}") from None
    if isinstance(typed, AccountStatus):
        typed = typed.value
    return Condition(fact=fact, op=op, value=typed)


def _parse_rule(
    raw: Any, index: int, groups: Sequence[str], thresholds: Mapping[str, float]
) -> Rule:
    where = f"causes[{index}]"
    if not isinstance(raw, Mapping):
        raise RulesError(f"{where}: must be a mapping")
    code = _require(raw, "code", where)
    where = f"cause '{code}'"
    if code not in CAUSE_CODES:
        raise RulesError(f"{where}: not a known cause code")
    group = _require(raw, "group", where)
    if group not in groups:
        raise RulesError(f"{where}: group '{group}' is not in groups")
    severity = _member(Severity, _require(raw, "severity", where), f"{where}: severity")
    fixable = _require(raw, "user_fixable", where)
    if not isinstance(fixable, bool):
        raise RulesError(f"{where}: user_fixable must be true or false")
    kind = _member(FixKind, _require(raw, "fix_kind", where), f"{where}: fix_kind")
    if (kind is FixKind.WAIT) == fixable:
        raise RulesError(
            f"{where}: fix_kind 'wait' is exactly the not user-fixable case"
        )
    wait_days = raw.get("wait_days")
    if wait_days is not None and (
        isinstance(wait_days, bool) or not isinstance(wait_days, int) or wait_days < 1
    ):
        raise RulesError(f"{where}: wait_days must be a positive whole number")
    responses = [
        _require(raw, "explanation", where),
        _require(raw, "alternative", where),
    ]
    steps = _require(raw, "fix_steps", where)
    if not isinstance(steps, list) or not steps:
        raise RulesError(f"{where}: fix_steps needs a non-empty list")
    for name in responses + steps:
        if not isinstance(name, str) or not name.startswith("utter_"):
            raise RulesError(f"{where}: '{name}' is not a response name (utter_...)")
    resolved_by = raw.get("resolved_by") or {}
    try:
        AccountFacts().updated(resolved_by)
    except FactsError as error:
        raise RulesError(f"{where}: resolved_by: {error}") from None
    unknown_keys = set(raw) - {
        "code", "group", "severity", "user_fixable", "fix_kind", "wait_days", "when",
        "explanation", "fix_steps", "alternative", "resolved_by",
    }  # fmt: skip
    if unknown_keys:
        raise RulesError(f"{where}: unknown keys {sorted(unknown_keys)}")
    finding = Finding(
        code=code,
        group=group,
        severity=severity,
        user_fixable=fixable,
        kind=kind,
        explanation=responses[0],
        fix_steps=tuple(steps),
        alternative=responses[1],
        wait_days=wait_days,
        resolved_by=dict(resolved_by),
    )
    when = _parse_condition(_require(raw, "when", where), thresholds, f"{where}.when")
    return Rule(finding, when)


def parse_rules(raw: Any) -> RuleTable:
    """Validate a loaded YAML document and build the table."""
    if not isinstance(raw, Mapping):
        raise RulesError("rules: the document must be a mapping")
    if raw.get("version") != 1:
        raise RulesError("rules: version must be 1")
    thresholds = _require(raw, "thresholds", "rules")
    if not isinstance(thresholds, Mapping) or not all(
        isinstance(v, int | float) and not isinstance(v, bool)
        for v in thresholds.values()
    ):
        raise RulesError("rules: thresholds must map names to numbers")
    groups = _require(raw, "groups", "rules")
    if not isinstance(groups, list) or len(set(groups)) != len(groups):
        raise RulesError("rules: groups must be a list of distinct names")
    causes = _require(raw, "causes", "rules")
    if not isinstance(causes, list):
        raise RulesError("rules: causes must be a list")
    rules = tuple(_parse_rule(c, i, groups, thresholds) for i, c in enumerate(causes))
    codes = [rule.finding.code for rule in rules]
    duplicates = sorted({c for c in codes if codes.count(c) > 1})
    if duplicates:
        raise RulesError(f"rules: duplicate cause codes {duplicates}")
    missing = [c for c in CAUSE_CODES if c not in codes]
    if missing:
        raise RulesError(f"rules: no row for cause codes {missing}")
    return RuleTable(dict(thresholds), tuple(groups), rules)


def load_rules(path: Path = DEFAULT_RULES) -> RuleTable:
    """Read and validate a rule table file."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise RulesError(f"rules: cannot read {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise RulesError(f"rules: {path} is not valid YAML: {error}") from None
    return parse_rules(raw)


@functools.lru_cache(maxsize=4)
def default_rules(path: Path = DEFAULT_RULES) -> RuleTable:
    """The table the bot uses, loaded once on first use (never at import)."""
    return load_rules(path)


def diagnose(facts: AccountFacts, table: Optional[RuleTable] = None) -> Diagnosis:
    """Diagnose with the default table unless one is given."""
    return (table or default_rules()).diagnose(facts)
