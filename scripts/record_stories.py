"""Record test stories from real conversations with the running bot.

Runs the scenarios of `devtools/scenarios.py` (every fixture account, an
anonymous user, a digression, a handoff) against the trained model and the
action server, and writes each tracker as an end-to-end test story to
`tests/stories/test_accounts.yml`. `make story-test` then replays them with
`rasa test core --fail-on-prediction-errors`, so a change to data, rules or
config that alters a conversation shows up as a failing story. The semantic
checks (right cause, right fix) are the end-to-end tests in tests/e2e.

Usage: python -m scripts.record_stories   (needs a trained model)
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Callable, Dict, List

from devtools.harness import Bot, running_bot
from devtools.project import ROOT
from devtools.scenarios import walk

OUTPUT = ROOT / "tests" / "stories" / "test_accounts.yml"
HEADER = """# Recorded by `make stories` (scripts/record_stories.py) from real
# conversations with the trained bot, the action server and the demo account
# store. Regenerate after changing flows; review the diff like code.
"""


def _digression(bot: Bot, sender: str) -> None:
    bot.reset(sender)
    bot.say(sender, "借呗咋没了")
    bot.say(sender, "借呗利息怎么算")
    bot.say(sender, "/affirm")


def _handoff(bot: Bot, sender: str) -> None:
    bot.reset(sender)
    bot.say(sender, "借呗被冻结了怎么办")
    bot.say(sender, "转人工")


def scenarios() -> Dict[str, Callable[[Bot, str], object]]:
    """Scenario name -> how to run it."""
    from actions.services.accounts import load_fixtures

    runs: Dict[str, Callable[[Bot, str], object]] = {
        account: walk for account in load_fixtures()
    }
    runs["visitor_anonymous"] = walk
    runs["digression_demo_no_bank_card"] = _digression
    runs["handoff_demo_account_frozen"] = _handoff
    return runs


def sender_of(name: str) -> str:
    """The conversation id a scenario talks as."""
    for prefix in ("digression_", "handoff_"):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def record(bot: Bot) -> str:
    """Run every scenario and return the stories YAML."""
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.shared.core.training_data.story_writer.yaml_story_writer import (
        YAMLStoryWriter,
    )

    domain = Domain.load(str(ROOT / "domain"))
    parts: List[str] = []
    for name, run in scenarios().items():
        sender = sender_of(name)
        run(bot, sender)
        events = bot.tracker(sender)["events"]
        restarts = [i for i, e in enumerate(events) if e.get("event") == "restart"]
        events = events[restarts[-1] + 1 :] if restarts else events
        tracker = DialogueStateTracker.from_dict(name, events, domain.slots)
        story = tracker.export_stories(YAMLStoryWriter(), e2e=True)
        parts.append(story.split("stories:\n", 1)[1])
    return HEADER + 'version: "3.1"\nstories:\n' + "".join(parts)


def main() -> int:
    """Record and write the stories."""
    with tempfile.TemporaryDirectory() as workdir, running_bot(Path(workdir)) as bot:
        text = record(bot)
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
