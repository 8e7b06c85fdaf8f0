"""`python -m scripts.security_report`: bad input, personal data, rate limit.

Starts the real bot in a temporary folder (``devtools.bad_input.bad_input_bot``:
the Rasa server and the action server, both connectors configured against a
local fake of the platform APIs, ``RATE_LIMIT=20/minute``) and reports:

- **bad input**: every case of ``devtools/bad_input.py`` (REST, WeCom, Official
  Account, socket.io), tried and passed per category, and each failure;
- **personal data**: the messages of ``devtools/privacy_cases.py`` (ID number,
  bank card, mobile, e-mail, SMS code), then 转人工 so that a handoff case is
  stored. Each value (14 cases: plain, grouped, full-width, split by a zero-width
  space...) is looked for, in any written form, in the bot's replies, the SQLite
  tracker store, the servers' logs and the handoff case: found = leaked;
- **rate limit**: one sender sends ``--burst`` messages (25), each as soon as
  the last was answered: how many were answered normally, how many got
  ``utter_rate_limited``, how long those took, whether the limited ones were
  kept out of the tracker, and whether another sender is answered right after.

Prints markdown tables, writes results/security.json and results/security.md.
Exit code 1 when a bad-input case fails or a value leaks, 2 without a trained
model.

    python -m scripts.security_report [--out results] [--burst 25]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any, List, Optional, Sequence

from tabulate import tabulate  # type: ignore[import-untyped]

from actions.services.cases import CaseStore
from devtools.bad_input import (
    RATE_LIMIT,
    CaseResult,
    Failed,
    bad_input_bot,
    burst,
    by_category,
    check_sensible,
    corpus,
    run_case,
    texts,
    user_events,
)
from devtools.harness import MODEL, Bot
from devtools.privacy_cases import CASES, leaked, messages, stored_places
from devtools.project import ROOT

HANDOFF_TEXT = "转人工"


def is_sensible(said: Sequence[str]) -> bool:
    """A normal answer: some text, not the apology, not a refusal."""
    try:
        check_sensible(said)
    except Failed:
        return False
    return True


def texts_of(reply: Any) -> List[str]:
    """The texts of a REST reply."""
    if not isinstance(reply, list):
        return []
    return [str(m.get("text") or "") for m in reply if isinstance(m, dict)]


# --- bad input ------------------------------------------------------------------


def run_bad_input(bot: Bot) -> List[CaseResult]:
    """Every corpus case, with a dot per case on stderr."""
    results = []
    for case in corpus():
        results.append(run_case(bot, case))
        print("." if results[-1].passed else "F", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return results


def bad_input_table(results: Sequence[CaseResult]) -> str:
    """Tried and passed per category, and the total."""
    counts = by_category(results)
    rows: List[List[Any]] = [
        [category, tried, passed, tried - passed]
        for category, (tried, passed) in counts.items()
    ]
    tried = sum(t for t, _ in counts.values())
    passed = sum(p for _, p in counts.values())
    rows.append(["**total**", tried, passed, tried - passed])
    return tabulate(rows, ["category", "tried", "passed", "failed"], "github")


def failure_table(results: Sequence[CaseResult]) -> str:
    """Each failed case and why."""
    rows = [
        [r.id, r.category, r.transport, r.status, r.elapsed_s, r.detail]
        for r in results
        if not r.passed
    ]
    if not rows:
        return "No case failed."
    headers = ["case", "category", "transport", "status", "s", "why"]
    return tabulate(rows, headers, "github", floatfmt=".3f", missingval="-")


# --- personal data --------------------------------------------------------------


@dataclass
class PiiFinding:
    """Where one raw value was found after the conversation."""

    kind: str
    written: str  # how the value was written in the message
    shown: str  # the value as the report shows it (masked)
    places: List[str] = field(default_factory=list)

    @property
    def leaked(self) -> bool:
        """Found anywhere."""
        return bool(self.places)


@dataclass
class PiiReport:
    """The personal-data conversation and what it left behind."""

    sender: str
    warned_pii: bool
    warned_secret: bool
    case_stored: bool
    findings: List[PiiFinding]


def shown(value: str) -> str:
    """A value as the report prints it: first two and last two characters."""
    return value[:2] + "*" * (len(value) - 4) + value[-2:]


def run_pii(bot: Bot) -> PiiReport:
    """Send the privacy messages, hand off, then look for each raw value."""
    sender = f"security_pii_{uuid.uuid4().hex[:8]}"
    said: List[str] = []
    for text in [*messages(), HANDOFF_TEXT]:
        said += texts_of(bot.say(sender, text))
    cases = CaseStore(bot.env["ACCOUNT_DB_URL"]).cases_for(sender)
    places = {"bot replies": "\n".join(said), **stored_places(bot.env, cases)}
    findings = [
        PiiFinding(
            case.kind,
            case.written,
            shown(case.canonical),
            [p for p, t in places.items() if leaked(case.canonical, t)],
        )
        for case in CASES
    ]
    known = texts()
    return PiiReport(
        sender,
        warned_pii=known.pii_warning in said,
        warned_secret=known.secret_warning in said,
        case_stored=bool(cases),
        findings=findings,
    )


def pii_table(report: PiiReport) -> str:
    """Tried and leaked per kind of value."""
    rows = [
        [f.kind, f.written, f.shown, 1, int(f.leaked), ", ".join(f.places) or "-"]
        for f in report.findings
    ]
    total = sum(int(f.leaked) for f in report.findings)
    rows.append(["**total**", "", "", len(report.findings), total, ""])
    table = tabulate(
        rows, ["kind", "written as", "value", "tried", "leaked", "found in"], "github"
    )
    notes = (
        f"utter_pii_warning given: {'yes' if report.warned_pii else 'NO'}; "
        f"utter_secret_warning given: {'yes' if report.warned_secret else 'NO'}; "
        f"handoff case stored (and searched): {'yes' if report.case_stored else 'NO'}"
    )
    return f"{table}\n\n{notes}"


# --- rate limit -----------------------------------------------------------------


@dataclass
class RateReport:
    """One sender's burst past the limit and another sender right after."""

    limit: str
    sent: int
    answered_normally: int
    rate_limited: int
    other_answers: int
    first_limited: Optional[int]  # 1-based
    limited_stored: int  # limited messages found in the tracker (should be 0)
    normal_reply_ms_mean: Optional[float]
    limited_reply_ms_mean: Optional[float]
    limited_reply_ms_max: Optional[float]
    burst_seconds: float
    other_sender_answered: bool


def mean_ms(seconds: Sequence[float]) -> Optional[float]:
    """The mean in milliseconds, or None for nothing."""
    return round(1000 * sum(seconds) / len(seconds), 1) if seconds else None


def run_rate_limit(bot: Bot, count: int) -> RateReport:
    """``count`` messages from one sender, then one from another."""
    sender = f"security_rate_{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    sent = burst(bot, sender, count)
    took = time.perf_counter() - started
    other_said = texts_of(
        bot.say(f"security_rate_other_{uuid.uuid4().hex[:8]}", "你好")
    )
    limited = sent.limited()
    normal = [i for i, said in enumerate(sent.said) if is_sensible(said)]
    stored = {e.get("text") for e in user_events(bot.tracker(sender))}
    limited_seconds = [sent.seconds[i] for i in limited]
    return RateReport(
        limit=RATE_LIMIT,
        sent=count,
        answered_normally=len(normal),
        rate_limited=len(limited),
        other_answers=count - len(normal) - len(limited),
        first_limited=limited[0] + 1 if limited else None,
        limited_stored=sum(1 for i in limited if sent.sent[i] in stored),
        normal_reply_ms_mean=mean_ms([sent.seconds[i] for i in normal]),
        limited_reply_ms_mean=mean_ms(limited_seconds),
        limited_reply_ms_max=round(1000 * max(limited_seconds), 1)
        if limited_seconds
        else None,
        burst_seconds=round(took, 2),
        other_sender_answered=is_sensible(other_said),
    )


def rate_table(report: RateReport) -> str:
    """The burst as one column of numbers."""
    rows = [
        ["limit (RATE_LIMIT)", report.limit],
        ["messages sent by one sender, back to back", report.sent],
        ["answered normally", report.answered_normally],
        ["answered with utter_rate_limited", report.rate_limited],
        ["other answers (errors)", report.other_answers],
        ["first limited message (#)", report.first_limited or "-"],
        ["limited messages found in the tracker", report.limited_stored],
        ["normal reply, mean ms", report.normal_reply_ms_mean or "-"],
        ["limited reply, mean ms", report.limited_reply_ms_mean or "-"],
        ["limited reply, max ms", report.limited_reply_ms_max or "-"],
        ["whole burst, s", report.burst_seconds],
        ["another sender answered normally right after",
         "yes" if report.other_sender_answered else "NO"],
    ]  # fmt: skip
    return tabulate(rows, ["rate limit", "value"], "github")


# --- the report -----------------------------------------------------------------


def markdown(
    results: Sequence[CaseResult], pii: PiiReport, rate: RateReport, date: str
) -> str:
    """The whole report as markdown."""
    return "\n\n".join(
        [
            f"# Security report ({date})",
            "## Bad input (devtools/bad_input.py against the real servers)",
            bad_input_table(results),
            "### Failed cases",
            failure_table(results),
            "## Personal data (devtools/privacy_cases.py, then a handoff)",
            pii_table(pii),
            "## Rate limit",
            rate_table(rate),
        ]
    )


def write(
    out: Path,
    results: Sequence[CaseResult],
    pii: PiiReport,
    rate: RateReport,
    date: str,
) -> None:
    """results/security.json and results/security.md."""
    out.mkdir(parents=True, exist_ok=True)
    content = {
        "meta": {
            "date": date,
            "rasa": version("rasa"),
            "model": str(MODEL.relative_to(ROOT)),
            "cases": len(results),
        },
        "bad_input": {
            "by_category": {
                c: {"tried": t, "passed": p}
                for c, (t, p) in by_category(results).items()
            },
            "cases": [asdict(r) for r in results],
        },
        "pii": asdict(pii),
        "rate_limit": asdict(rate),
    }  # fmt: skip
    (out / "security.json").write_text(
        json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (out / "security.md").write_text(
        markdown(results, pii, rate, date) + "\n", encoding="utf-8"
    )


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Options from the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    parser.add_argument("--burst", type=int, default=25,
                        help="messages one sender sends back to back (25)")  # fmt: skip
    return parser.parse_args(argv)


def main(argv: Sequence[str]) -> int:
    """Start the bot, measure, report; 1 on a failed case or a leak."""
    args = parse_args(argv)
    if not MODEL.exists():
        print(f"no trained model at {MODEL}: run `make train` first", file=sys.stderr)
        return 2
    date = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory(prefix="security_report_") as folder:
        with bad_input_bot(Path(folder)) as bot:
            results = run_bad_input(bot)
            pii = run_pii(bot)
            rate = run_rate_limit(bot, args.burst)
    print(markdown(results, pii, rate, date))
    write(args.out, results, pii, rate, date)
    print(f"\nwrote {args.out / 'security.json'}, {args.out / 'security.md'}")
    failed = sum(1 for r in results if not r.passed)
    leaked = sum(1 for f in pii.findings if f.leaked)
    return 1 if failed or leaked else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
