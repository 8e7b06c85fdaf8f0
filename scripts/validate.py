"""`rasa data validate`, failing on every warning Rasa prints.

Rasa's `--fail-on-warnings` still passes when an intent or response is unused.
This wrapper runs the real command and fails on any warning line, with two
exceptions that Rasa 3.6 raises for every project of this shape:
- "utterance X is not used in any story or rule" for a response that custom
  action code, the reply guard, the diagnosis rule table or the agent desk's
  relay names (found by scanning `actions/`, `bot_server/` and `desk/`
  for its name), that a form sends to ask for a slot (utter_ask_<slot>), or
  that Rasa's own fallback action sends: the validator sees none of these;
- "duplicated intents ... across multiple domain files" for retrieval intents:
  Rasa's importer re-adds every retrieval intent from the NLU data to the
  domain, and warns when the domain lists it too (which story reading needs).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Iterable, List, Set

ROOT = Path(__file__).resolve().parent.parent
# Sent by Rasa's built-in action_default_fallback.
RASA_DEFAULT_RESPONSES = {"utter_default"}
_UNUSED_RESPONSE = re.compile(
    r"The utterance '([^']+)' is not used in any story or rule"
)
_DUPLICATE_INTENTS = re.compile(
    r"duplicated intents have been found across multiple domain files: (.+)$"
)
_RESPONSE_NAME = re.compile(r"utter_[a-z0-9_/]+")
_PREFIX_CONSTANT = re.compile(r'_PREFIX\s*=\s*"(utter_[a-z0-9_]+)"')


def responses_sent_by_actions(
    action_sources: Iterable[Path],
) -> tuple[Set[str], Set[str]]:
    """Response names and name prefixes that the action code uses."""
    names: Set[str] = set(RASA_DEFAULT_RESPONSES)
    prefixes: Set[str] = set()
    for path in action_sources:
        text = path.read_text(encoding="utf-8")
        names.update(_RESPONSE_NAME.findall(text))
        prefixes.update(_PREFIX_CONSTANT.findall(text))
    return names, prefixes


def domain_slots(domain_folder: Path) -> Set[str]:
    """Slot names declared in the domain files."""
    import yaml

    slots: Set[str] = set()
    for path in sorted(domain_folder.glob("*.yml")):
        part = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        slots.update(part.get("slots", {}))
    return slots


def retrieval_intents(nlu_folder: Path) -> Set[str]:
    """Intents that the NLU data uses as retrieval intents (``faq/...``)."""
    found = re.findall(
        r"^-\s*intent:\s*([a-z_]+)/", _read_all(nlu_folder), re.MULTILINE
    )
    return set(found)


def _read_all(folder: Path) -> str:
    return "\n".join(
        p.read_text(encoding="utf-8") for p in sorted(folder.rglob("*.yml"))
    )


def unexplained_warnings(
    output: str, names: Set[str], prefixes: Set[str], retrieval: Set[str]
) -> List[str]:
    """Warning lines that neither exception above accounts for."""
    problems = []
    for line in output.splitlines():
        if "Warning" not in line:
            continue
        if "DeprecationWarning" in line or "MovedIn20Warning" in line:
            continue  # library internals, not our data
        unused = _UNUSED_RESPONSE.search(line)
        if unused:
            name = unused.group(1)
            if name in names or any(name.startswith(p) for p in prefixes):
                continue
        duplicate = _DUPLICATE_INTENTS.search(line.strip())
        if duplicate and set(duplicate.group(1).split(", ")) <= retrieval:
            continue
        problems.append(line.strip())
    return problems


def main() -> int:
    """Run the validator and judge its output."""
    command = [
        str(ROOT / ".venv" / "bin" / "rasa"),
        "data",
        "validate",
        "--config",
        "config.yml",
        "--domain",
        "domain",
        "--data",
        "data",
        "--fail-on-warnings",
    ]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    output = run.stdout + run.stderr
    sources = [
        path
        for folder in ("actions", "bot_server", "desk")
        for pattern in ("*.py", "*.yml")
        for path in sorted((ROOT / folder).rglob(pattern))
    ]
    names, prefixes = responses_sent_by_actions(sources)
    names |= {f"utter_ask_{slot}" for slot in domain_slots(ROOT / "domain")}
    retrieval = retrieval_intents(ROOT / "data" / "nlu")
    problems = unexplained_warnings(output, names, prefixes, retrieval)
    if run.returncode != 0 or problems:
        print(output)
        for problem in problems:
            print(f"validate: {problem}", file=sys.stderr)
        print("validate: FAILED", file=sys.stderr)
        return 1
    print("rasa data validate: no warnings (responses sent by actions excepted)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
