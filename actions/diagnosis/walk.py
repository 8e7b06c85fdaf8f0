"""Walking the user through the fixes, one finding at a time (pure logic).

The dialogue keeps a list of steps tried (JSON-friendly dicts in a slot). This
module decides, from the facts and those steps, what the facts now are, which
finding comes next, and what the user's answer to "完成了吗?" means.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence

from actions.diagnosis.engine import Finding, RuleTable
from actions.diagnosis.facts import AccountFacts

# What the user answered for a step.
DONE = "done"  # says the fix is done
CANNOT = "cannot"  # could not / would not do it
ACKNOWLEDGED = "acknowledged"  # understood a step that only time or staff can fix

# What the re-check after DONE showed.
CONFIRMED = "confirmed"  # the account store no longer shows the cause
PENDING = "pending"  # the store still shows it (updates lag)
NOTED = "noted"  # no store to check (anonymous user): taken on the user's word


@dataclass(frozen=True)
class Step:
    """One finding walked through."""

    code: str
    answer: str
    recheck: Optional[str] = None

    def to_slot(self) -> Dict[str, Any]:
        """JSON form kept in the `steps_tried` slot."""
        return asdict(self)

    @classmethod
    def from_slot(cls, raw: Mapping[str, Any]) -> Step:
        """Read back a slot entry."""
        return cls(str(raw["code"]), str(raw["answer"]), raw.get("recheck"))


def steps_from_slot(raw: Any) -> List[Step]:
    """The steps tried so far (tolerates an empty or missing slot)."""
    if not isinstance(raw, list):
        return []
    return [Step.from_slot(item) for item in raw if isinstance(item, Mapping)]


def facts_after(
    facts: AccountFacts, steps: Sequence[Step], table: RuleTable
) -> AccountFacts:
    """The facts once the fixes the user reported done are taken into account."""
    for step in steps:
        if step.answer == DONE:
            resolved_by = table.finding(step.code).resolved_by
            if resolved_by:
                facts = facts.updated(resolved_by)
    return facts


def next_finding(
    facts: AccountFacts, steps: Sequence[Step], table: RuleTable
) -> Optional[Finding]:
    """The most important finding still to walk through, given the steps so far."""
    tried = {step.code for step in steps}
    diagnosis = table.diagnose(facts_after(facts, steps, table))
    return next((f for f in diagnosis.findings if f.code not in tried), None)


def recheck(finding: Finding, fresh: Optional[AccountFacts], table: RuleTable) -> str:
    """After the user says a fix is done: does the account store agree?

    `fresh` is the store's current record, or None for an anonymous user.
    """
    if fresh is None:
        return NOTED
    still_there = finding.code in table.diagnose(fresh).codes
    return PENDING if still_there else CONFIRMED


def answer_step(
    finding: Finding,
    said_yes: bool,
    fresh: Optional[AccountFacts],
    table: RuleTable,
) -> Step:
    """Turn the user's yes/no about the current finding into a recorded step."""
    if not said_yes:
        return Step(finding.code, CANNOT)
    if finding.kind != "now":
        return Step(finding.code, ACKNOWLEDGED)
    return Step(finding.code, DONE, recheck(finding, fresh, table))


def unresolved(steps: Sequence[Step]) -> List[Step]:
    """Steps whose cause may still hide the entry."""
    return [s for s in steps if not (s.answer == DONE and s.recheck != PENDING)]


def longest_wait(steps: Sequence[Step], table: RuleTable) -> Optional[int]:
    """Days until it is worth looking again, over the unresolved steps."""
    waits = [table.finding(s.code).wait_days for s in unresolved(steps)]
    known = [w for w in waits if w]
    return max(known) if known else None
