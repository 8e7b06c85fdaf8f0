"""The closed vocabularies of the diagnosis: rule table, answers, fix walk, lookups.

Each is a ``str`` enum whose values are what rules.yml, the slots and the JSON
output hold: a member compares equal to its string and serialises as it.
"""

from __future__ import annotations

from enum import Enum


class Severity(str, Enum):
    """How much a cause weighs (rules.yml ``severity``)."""

    BLOCKING = "blocking"  # hides the entry on its own
    CONTRIBUTING = "contributing"


class FixKind(str, Enum):
    """What fixing a cause takes (rules.yml ``fix_kind``)."""

    NOW = "now"  # the user does it now; "完成了吗?" and a re-check follow
    OVER_TIME = "over_time"  # the user helps, time tells
    WAIT = "wait"  # nothing the user can do: exactly the not user-fixable causes


class Reply(str, Enum):
    """A reply to a question that carries no value."""

    SKIP = "skip"  # "不知道" / "跳过": the bot stops asking


class StepAnswer(str, Enum):
    """What the user answered for a fix step ("完成了吗?")."""

    DONE = "done"  # says the fix is done
    CANNOT = "cannot"  # could not / would not do it
    ACKNOWLEDGED = "acknowledged"  # understood a step only time or staff can fix


class Recheck(str, Enum):
    """What the re-check of the account store showed after a DONE."""

    CONFIRMED = "confirmed"  # the store no longer shows the cause
    PENDING = "pending"  # the store still shows it (updates lag)
    NOTED = "noted"  # no store to ask (anonymous user, store down): the user's word


class LookupStatus(str, Enum):
    """What looking an account up in the store gave."""

    FOUND = "found"
    NOT_FOUND = "not_found"  # no such account, or nobody identified
    UNAVAILABLE = "unavailable"  # the store failed or was too slow
