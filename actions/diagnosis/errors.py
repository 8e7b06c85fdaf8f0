"""Named errors of the diagnosis engine, one line each."""

from __future__ import annotations


class DiagnosisError(Exception):
    """Base class: every error here has a one-line, user-readable message."""


class FactsError(DiagnosisError):
    """An account-facts record is malformed; the message names the field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class RulesError(DiagnosisError):
    """The rule table is malformed; the message says where."""


class AccountNotFound(DiagnosisError):
    """No account with that id in the account store."""
