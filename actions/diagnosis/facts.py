"""The account-facts record (JSON format version 1) and its validation.

A record is a JSON object; every field is optional and a missing field means
"unknown". ``schema_version`` may be given and must then be 1. Unknown fields,
wrong types, out-of-range values and bad enum values are refused with a
`FactsError` naming the field. docs/conversation.md documents the format.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from enum import Enum
from typing import Any, Dict, Mapping, Optional, Tuple

from actions.diagnosis.errors import FactsError

SCHEMA_VERSION = 1
VERSION_FIELD = "schema_version"


class AccountStatus(str, Enum):
    """State of the payment account."""

    NORMAL = "normal"
    NOT_ACTIVATED = "not_activated"
    RESTRICTED = "restricted"
    FROZEN = "frozen"


@dataclass(frozen=True)
class FactSpec:
    """What one field may hold."""

    name: str
    kind: str  # "bool" | "int" | "float" | "status"
    description: str
    minimum: Optional[float] = None
    maximum: Optional[float] = None


FACT_SPECS: Dict[str, FactSpec] = {
    spec.name: spec
    for spec in (
        FactSpec("account_status", "status", "normal/not_activated/restricted/frozen"),
        FactSpec("real_name_verified", "bool", "name and ID number verified"),
        FactSpec("phone_verified", "bool", "mobile number verified"),
        FactSpec("bank_cards", "int", "own-name bank cards bound", 0),
        FactSpec("sesame_score", "int", "Sesame credit score", 350, 950),
        FactSpec("payments_last_30d", "int", "payments in the last 30 days", 0),
        FactSpec("offline_payments_last_30d", "int", "offline payments, 30 days", 0),
        FactSpec("identity_profile_complete", "bool", "occupation/education filled"),
        FactSpec("overdue_count", "int", "current or recent overdue loans/cards", 0),
        FactSpec("high_risk_region", "bool", "lives in a high-risk region"),
        FactSpec("credit_inquiries_last_30d", "int", "loan applications, 30 days", 0),
        FactSpec("debt_ratio", "float", "debt relative to income/assets", 0),
        FactSpec("app_version_outdated", "bool", "app too old to show the entry"),
    )
}


@dataclass(frozen=True)
class AccountFacts:
    """What is known about one account; None means unknown."""

    account_status: Optional[AccountStatus] = None
    real_name_verified: Optional[bool] = None
    phone_verified: Optional[bool] = None
    bank_cards: Optional[int] = None
    sesame_score: Optional[int] = None
    payments_last_30d: Optional[int] = None
    offline_payments_last_30d: Optional[int] = None
    identity_profile_complete: Optional[bool] = None
    overdue_count: Optional[int] = None
    high_risk_region: Optional[bool] = None
    credit_inquiries_last_30d: Optional[int] = None
    debt_ratio: Optional[float] = None
    app_version_outdated: Optional[bool] = None

    def get(self, name: str) -> Any:
        """The value of a fact by name (plain string for the status)."""
        value = getattr(self, name)
        return value.value if isinstance(value, AccountStatus) else value

    def known(self) -> Tuple[str, ...]:
        """Names of the facts that are known."""
        return tuple(name for name in FACT_SPECS if getattr(self, name) is not None)

    def updated(self, changes: Mapping[str, Any]) -> AccountFacts:
        """A copy with `changes` (validated like a record) applied over this one."""
        parsed = parse_facts(changes)
        return dataclasses.replace(
            self, **{name: getattr(parsed, name) for name in parsed.known()}
        )

    def to_dict(self) -> Dict[str, Any]:
        """The JSON record: known facts only, with the schema version."""
        record: Dict[str, Any] = {VERSION_FIELD: SCHEMA_VERSION}
        record.update({name: self.get(name) for name in self.known()})
        return record


def check_value(spec: FactSpec, value: Any) -> Any:
    """Validate one value against its spec; returns the typed value."""
    if value is None:
        return None
    if spec.kind == "bool":
        if not isinstance(value, bool):
            raise FactsError(spec.name, f"must be true or false, got {value!r}")
        return value
    if spec.kind == "status":
        allowed = [status.value for status in AccountStatus]
        if not isinstance(value, str) or value not in allowed:
            raise FactsError(spec.name, f"must be one of {allowed}, got {value!r}")
        return AccountStatus(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FactsError(spec.name, f"must be a number, got {value!r}")
    if spec.kind == "int" and not isinstance(value, int):
        raise FactsError(spec.name, f"must be a whole number, got {value!r}")
    if not math.isfinite(value):
        raise FactsError(spec.name, f"must be a finite number, got {value!r}")
    if spec.minimum is not None and value < spec.minimum:
        raise FactsError(spec.name, f"must be at least {spec.minimum:g}, got {value!r}")
    if spec.maximum is not None and value > spec.maximum:
        raise FactsError(spec.name, f"must be at most {spec.maximum:g}, got {value!r}")
    return float(value) if spec.kind == "float" else value


def parse_facts(record: Mapping[str, Any]) -> AccountFacts:
    """Validate a JSON-like record and return typed facts."""
    if not isinstance(record, Mapping):
        raise FactsError(
            "record", f"must be a JSON object, got {type(record).__name__}"
        )
    values: Dict[str, Any] = {}
    for name, value in record.items():
        if name == VERSION_FIELD:
            if value != SCHEMA_VERSION or isinstance(value, bool):
                raise FactsError(name, f"unsupported version {value!r} (expected 1)")
            continue
        spec = FACT_SPECS.get(name)
        if spec is None:
            raise FactsError(str(name), "unknown field")
        values[name] = check_value(spec, value)
    return AccountFacts(**values)
