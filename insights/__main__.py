"""``python -m insights``: the figures, the review queue and the retention purge.

    python -m insights stats --from 2024-05-01 --to 2024-05-31 [--channel C] [--json]
    python -m insights review-queue [--limit 50] [--days 30] [--json]
    python -m insights review-label ITEM_ID LABEL [--reviewer NAME]
    python -m insights review-export [--out data/nlu/reviewed.yml]
    python -m insights purge [--days N]

The stores come from the settings (InsightsSettings: TRACKER_DB_*, CASE_DB_URL
or ACCOUNT_DB_URL, RETENTION_DAYS, REVIEW_CONFIDENCE_BELOW); docs/insights.md.
Exit status: 0 done, 2 bad arguments, 3 a store could not be reached.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from actions.services.sql import StoreUnavailable
from insights import export, retention, review
from insights.stats import StatsQueryError, parse_query, stats
from insights.stores import stores_from_settings
from settings import SettingsError, insights_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m insights")
    commands = parser.add_subparsers(dest="command", required=True)
    figures = commands.add_parser("stats", help="the figures of a date range (UTC)")
    figures.add_argument("--from", dest="start", help="first day, YYYY-MM-DD")
    figures.add_argument("--to", dest="end", help="last day, YYYY-MM-DD (inclusive)")
    figures.add_argument("--channel", help="only this input channel (e.g. socketio)")
    figures.add_argument("--json", action="store_true", help="the JSON of the API")
    queue = commands.add_parser("review-queue", help="messages the NLU was unsure of")
    queue.add_argument("--limit", type=int, default=review.DEFAULT_LIMIT)
    queue.add_argument(
        "--days",
        type=int,
        default=review.DEFAULT_DAYS,
        help=f"the last N days (default {review.DEFAULT_DAYS})",
    )
    queue.add_argument("--json", action="store_true")
    label = commands.add_parser("review-label", help="label one queue item")
    label.add_argument("item_id")
    label.add_argument("label")
    label.add_argument("--reviewer", default="cli")
    export = commands.add_parser(
        "review-export", help="write the reviewed messages to data/nlu/reviewed.yml"
    )
    export.add_argument("--out", type=Path, help="another file to write")
    purge = commands.add_parser("purge", help="delete conversations idle too long")
    purge.add_argument("--days", type=int, help="retention (default RETENTION_DAYS)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run one command; see the module's docstring."""
    args = _parser().parse_args(argv)
    try:
        settings = insights_settings()
        return _run(args, settings)
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2
    except (StatsQueryError, review.ReviewError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except review.UnknownItem as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except StoreUnavailable as error:
        print(f"store unavailable: {error}", file=sys.stderr)
        return 3


def _run(args: argparse.Namespace, settings: Any) -> int:
    stores = stores_from_settings(settings)
    if args.command == "stats":
        start, end, channel = parse_query(
            {"from": args.start, "to": args.end, "channel": args.channel}
        )
        figures = stats(stores, start, end, channel)
        print(_json(figures) if args.json else render_stats(figures))
        return 0
    if args.command == "review-queue":
        if args.days < 1:
            raise ValueError("--days must be 1 or more")
        since = datetime.now(timezone.utc) - timedelta(days=args.days)
        items = review.review_queue(
            stores, settings.review_confidence_below, limit=args.limit, since=since
        )
        if args.json:
            print(_json({"items": [item.as_dict() for item in items]}))
        else:
            for item in items:
                reasons = ",".join(item.reasons)
                print(
                    f"{item.id}  ×{item.count:<4} {item.predicted or '-':<28} "
                    f"{reasons:<30} {item.text}"
                )
        return 0
    if args.command == "review-label":
        saved = review.label_item(
            stores,
            args.item_id,
            args.label,
            args.reviewer,
            settings.review_confidence_below,
        )
        print(_json(saved))
        return 0
    if args.command == "review-export":
        report = export.export_reviewed(stores, path=args.out)
        summary = report.as_dict()
        print(
            f"{summary['written']} reviewed messages written to {report.path}"
            if summary["written"]
            else f"no reviewed message to export ({report.path} not written)"
        )
        for label, count in summary["by_label"].items():
            print(f"  {label}: {count}")
        for reason, count in summary["refused"].items():
            print(f"  not exported ({reason}): {count}")
        return 0
    if args.command == "purge":
        days = settings.retention_days if args.days is None else args.days
        counts = retention.purge(stores, days)
        print(
            f"purged conversations idle since before {counts['cutoff']} "
            f"(retention {days} days):"
        )
        for name in retention.COUNTED:
            print(f"  {name}: {counts[name]}")
        return 0
    raise AssertionError(args.command)  # argparse allows no other


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)


def render_stats(figures: Dict[str, Any]) -> str:
    """The figures as a short text report."""

    def pct(name: str) -> str:
        figure = figures["rates"][name]
        if figure["rate"] is None:
            return "-"
        return f"{figure['rate']:.1%} ({figure['numerator']}/{figure['denominator']})"

    span = figures["range"]
    counts = figures["counts"]
    lines: List[str] = [
        f"{span['from']} .. {span['to']} (UTC)"
        + (f", channel {span['channel']}" if span["channel"] else ""),
        f"conversations {counts['conversations']}, user messages "
        f"{counts['user_messages']}, diagnoses {counts['diagnosis_conversations']}",
        f"self-service {pct('self_service_rate')}  handoff {pct('handoff_rate')}  "
        f"abandoned {pct('abandon_rate')}",
        f"fallback {pct('fallback_rate')}  did you mean {pct('did_you_mean_rate')}",
    ]
    average = figures["csat_average"]
    lines.append(
        f"CSAT {'-' if average is None else f'{average:.2f}'} "
        f"from {counts['ratings']} ratings {figures['csat_distribution']}"
    )
    lines.append(f"handoff reasons {figures['handoff_reasons']}")
    reply = figures["first_reply_seconds"]
    lines.append(
        f"first agent reply: median {reply['median']} s, p90 {reply['p90']} s "
        f"({reply['count']} cases)"
    )
    lines.append(
        "causes: "
        + (", ".join(f"{c['cause']} {c['count']}" for c in figures["causes"]) or "-")
    )
    lines.append(
        "intents: "
        + (
            ", ".join(f"{i['intent']} {i['count']}" for i in figures["intents"][:10])
            or "-"
        )
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
