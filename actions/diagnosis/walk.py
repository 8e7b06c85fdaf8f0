"""Walking the user through the fixes, one finding at a time (pure logic).

The dialogue keeps a list of steps tried (JSON-friendly dicts in a slot). This
module decides, from the facts and those steps, what the facts now are, which
finding comes next, and what the user's answer to "完成了吗?" means.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence

from actions.diagnosis.engine import Finding, RuleTable
from actions.diagnosis.enums import FixKind, Recheck, StepAnswer
from actions.diagnosis.facts import AccountFacts


@dataclass(frozen=True)
class Step:
    """One finding walked through."""

    code: str
    answer: StepAnswer
    recheck: Optional[Recheck] = None

    def to_slot(self) -> Dict[str, Any]:
        """JSON form kept in the `steps_tried` slot."""
        return {
            "code": self.code,
            "answer": self.answer.value,
            "recheck": self.recheck.value if self.recheck else None,
        }

    @classmethod
    def from_slot(cls, raw: Mapping[str, Any]) -> Step:
        """Read back a slot entry."""
        recheck = raw.get("recheck")
        return cls(
            str(raw["code"]),
            StepAnswer(raw["answer"]),
            Recheck(recheck) if recheck else None,
        )


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
        if step.answer is StepAnswer.DONE:
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


def recheck(
    finding: Finding, fresh: Optional[AccountFacts], table: RuleTable
) -> Recheck:
    """After the user says a fix is done: does the account store agree?

    `fresh` is the store's record read again just now, or None when there is
    no store to ask (an anonymous user, a store that failed).
    """
    if fresh is None:
        return Recheck.NOTED
    still_there = finding.code in table.diagnose(fresh).codes
    return Recheck.PENDING if still_there else Recheck.CONFIRMED


def answer_step(
    finding: Finding,
    said_yes: bool,
    fresh: Optional[AccountFacts],
    table: RuleTable,
) -> Step:
    """Turn the user's yes/no about the current finding into a recorded step."""
    if not said_yes:
        return Step(finding.code, StepAnswer.CANNOT)
    if finding.kind is not FixKind.NOW:
        return Step(finding.code, StepAnswer.ACKNOWLEDGED)
    return Step(finding.code, StepAnswer.DONE, recheck(finding, fresh, table))


def unresolved(steps: Sequence[Step]) -> List[Step]:
    """Steps whose cause may still hide the entry."""
    return [
        s
        for s in steps
        if not (s.answer is StepAnswer.DONE and s.recheck is not Recheck.PENDING)
    ]


def longest_wait(steps: Sequence[Step], table: RuleTable) -> Optional[int]:
    """Days until it is worth looking again, over the unresolved steps."""
    waits = [table.finding(s.code).wait_days for s in unresolved(steps)]
    known = [w for w in waits if w]
    return max(known) if known else None
