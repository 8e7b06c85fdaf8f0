"""Support-staff CLI: why is 借呗 hidden for this account?

    python -m actions.diagnosis --facts FILE.json   (- reads standard input)
    python -m actions.diagnosis --account ID        (looked up in the account store)

Prints JSON {"causes": [...], ...}, most important first. Bad input exits
non-zero with a one-line message on standard error, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

from actions.diagnosis.engine import DEFAULT_RULES, load_rules
from actions.diagnosis.errors import DiagnosisError
from actions.diagnosis.facts import AccountFacts, parse_facts

EXIT_BAD_INPUT = 2
EXIT_UNAVAILABLE = 3


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line, not the usage dump
        self.exit(EXIT_BAD_INPUT, f"diagnosis: {message}\n")


def _read_facts(source: str) -> AccountFacts:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text("utf-8")
    except OSError as error:
        raise DiagnosisError(f"cannot read {source}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise DiagnosisError(f"{source} is not UTF-8 text") from None
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise DiagnosisError(
            f"{source} is not valid JSON (line {error.lineno}: {error.msg})"
        ) from None
    return parse_facts(record)


def _lookup(account_id: str) -> AccountFacts:
    from actions.services.accounts import StoreUnavailable, account_store

    try:
        return account_store().get(account_id)
    except StoreUnavailable as error:
        raise StoreUnavailableExit(str(error)) from None


class StoreUnavailableExit(Exception):
    """The account store could not be reached."""


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the CLI; returns the exit status."""
    parser = _Parser(prog="python -m actions.diagnosis", description=__doc__)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--facts", metavar="FILE", help="facts JSON file, - for stdin")
    source.add_argument("--account", metavar="ID", help="account id in the store")
    parser.add_argument("--rules", type=Path, default=DEFAULT_RULES, help="rule table")
    args = parser.parse_args(argv)
    try:
        table = load_rules(args.rules)
        facts = _read_facts(args.facts) if args.facts else _lookup(args.account)
        result = table.diagnose(facts)
    except DiagnosisError as error:
        print(f"diagnosis: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except StoreUnavailableExit as error:
        print(f"diagnosis: account store unavailable: {error}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    output = (
        {"account": args.account, **result.to_dict()}
        if args.account
        else result.to_dict()
    )
    print(json.dumps(output, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
