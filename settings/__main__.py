"""``python -m settings``: the declared variables as the tables of docs/profiles.md.

``--check``: exit 1 unless the process environment gives usable settings for
every process (what a deployment runs before it starts the servers).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, List

from settings.core import SettingsError, load
from settings.processes import PROCESSES, ROOT, process_variables

TITLES = {
    "rasa": "Rasa server (`rasa run`: channels, reply pipeline, platforms)",
    "actions": "Action server (`python -m actions.server`)",
    "seed": "Demo seed (`python -m actions.services.accounts seed`)",
    "web": "Page server (`python -m web.server`)",
    "insights": "Insights (`python -m insights`: figures, review queue, purge)",
}


def shown_default(value: Any) -> str:
    """A default as a reader would type it."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, tuple):
        return "`" + ",".join(value) + "`"
    return "`" + str(value).replace(str(ROOT), "<repo>") + "`"


BEGIN = "<!-- settings tables: python -m settings -->"
END = "<!-- end of settings tables -->"


def markdown() -> str:
    """One table per process: variable, default, meaning."""
    lines: List[str] = []
    for process in PROCESSES:
        if process == "seed":
            continue  # the actions' variables without the listener's
        lines += [f"#### {TITLES[process]}", "", "| variable | default | meaning |"]
        lines.append("|---|---|---|")
        for variable in process_variables(process):
            meaning = variable.doc
            if variable.secret:
                meaning += " (secret)"
            if variable.never_deployed:
                meaning += f"; never deployed: {variable.never_deployed}"
            default = shown_default(variable.default)
            lines.append(f"| `{variable.name}` | {default} | {meaning} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: List[str]) -> int:
    """Print the tables, or check the environment."""
    parser = argparse.ArgumentParser(prog="python -m settings")
    parser.add_argument("--check", choices=sorted(PROCESSES))
    args = parser.parse_args(argv)
    if args.check:
        try:
            for cls in PROCESSES[args.check]:
                load(cls)
        except SettingsError as error:
            print(error, file=sys.stderr)
            return 1
        print(f"{args.check}: settings usable")
        return 0
    print(markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
