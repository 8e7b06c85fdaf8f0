"""The review queue: users' messages the NLU was unsure of, labelled by people.

A message goes to the queue when (docs/insights.md, "The review loop"):

* the NLU's confidence in its best intent was below REVIEW_CONFIDENCE_BELOW
  (default 0.82, the fallback threshold of config.yml), or its intent is the
  fallback (``nlu_fallback``);
* the bot asked "did you mean…" right after it (``action_clarify_intent``);
* the user asked for a person (``request_human``) in one of the next two
  messages.

Messages are grouped by a key (the project's normaliser, then letters and
digits only, lower-cased), counted and shown most frequent first, their text
masked again with the input gate's masking (it is masked in the tracker
already). A reviewer gives each the intent it should have had, or ``noise``;
the label is kept in ``review_labels`` (case store database) with who and
when and what the NLU predicted then. insights/export.py writes the labels
to data/nlu/reviewed.yml for the next ``make train``.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Set,
    Tuple,
)

import sqlalchemy as sa
import yaml

from bot_server.pipeline.gate import mask_personal_data
from insights.stores import (
    CONFIDENCE_INDEX,
    CONFIDENCE_SQL,
    Stores,
    aware,
    confidence_of,
    events_table,
    labels_table,
)
from nlu.normaliser import normalise

ROOT = Path(__file__).resolve().parent.parent
FALLBACK_INTENT = "nlu_fallback"
CLARIFY_ACTION = "action_clarify_intent"
HUMAN_INTENT = "request_human"
# How many of the user's next messages may ask for a person.
HUMAN_WITHIN_TURNS = 2
NOISE = "noise"
# Why a message is in the queue.
REASONS = ("low_confidence", "fallback", "did_you_mean", "before_handoff")
DEFAULT_LIMIT = 50
# The queue's window by default (the CLI's; the page's to pass): the last
# 30 days. Over 90 days of 100,000 conversations it takes seconds.
DEFAULT_DAYS = 30
MAX_LIMIT = 500
# Senders per IN (...) list.
CHUNK = 500
MAX_REVIEWER_CHARS = 64


class ReviewError(ValueError):
    """A label, reviewer or limit that cannot be used; the message says why."""


class UnknownItem(LookupError):
    """No message of the queue (or labelled before) has this id."""


@functools.lru_cache(maxsize=65536)
def dedup_key(text: str) -> str:
    """What two messages share when they say the same thing.

    The NLU's normaliser (full-width, pinyin of domain terms, traditional to
    simplified, the products' misspellings), then letters and digits only,
    lower-cased: "借唄額度咋整？？" and "借呗额度咋整" are one item.
    """
    return "".join(char for char in normalise(text) if char.isalnum()).lower()


def item_id(key: str) -> str:
    """The stable id of a queue item (from its key)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def masked(text: str) -> str:
    """The text with personal data masked (again: the tracker holds it masked)."""
    return mask_personal_data(text).text


def predicted_label(parse_data: Mapping[str, Any]) -> Tuple[Optional[str], float]:
    """The NLU's best label and its confidence, before the fallback stepped in.

    A retrieval intent (``faq``) is read as its sub-intent (``faq/...``) when
    the response selector chose one (as scripts/eval_nlu.py does).
    """
    ranking = list(parse_data.get("intent_ranking") or [])
    intent = parse_data.get("intent") or {}
    best = next(
        (item for item in ranking if item.get("name") not in (None, FALLBACK_INTENT)),
        intent if intent.get("name") != FALLBACK_INTENT else None,
    )
    if not best or not best.get("name"):
        return None, 0.0
    name = str(best["name"])
    confidence = float(best.get("confidence") or 0.0)
    selector = (parse_data.get("response_selector") or {}).get(name) or {}
    key = (selector.get("response") or {}).get("intent_response_key")
    return (str(key) if key else name), confidence


def allowed_labels(domain_dir: Optional[Path] = None) -> List[str]:
    """The labels a reviewer may give: what users can say, and ``noise``.

    The domain's intents, a retrieval intent replaced by its sub-intents (the
    ``utter_faq/<sub>`` responses name them, as data/nlu does: ``faq/<sub>``),
    without the NLU's fallback.
    """
    folder = domain_dir or ROOT / "domain"
    intents: List[str] = []
    responses: Set[str] = set()
    for path in sorted(folder.glob("*.yml")):
        part = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for intent in part.get("intents") or []:
            intents.append(next(iter(intent)) if isinstance(intent, dict) else intent)
        responses.update(part.get("responses") or {})
    labels: Set[str] = set()
    for intent in intents:
        subs = {
            name.removeprefix("utter_")
            for name in responses
            if name.startswith(f"utter_{intent}/")
        }
        labels |= subs or {intent}
    labels.discard(FALLBACK_INTENT)
    return [*sorted(labels), NOISE]


@dataclass
class Occurrence:
    """One user message that belongs in the queue."""

    event_id: int
    sender_id: str
    timestamp: float
    text: str
    predicted: Optional[str]
    confidence: float
    reasons: Set[str] = field(default_factory=set)


@dataclass
class ReviewItem:
    """Messages with one key: what the reviewer sees."""

    id: str
    key: str
    text: str
    count: int
    conversations: int
    reasons: List[str]
    predicted: Optional[str]
    confidence: float
    first_seen: float
    last_seen: float

    def as_dict(self) -> Dict[str, Any]:
        """JSON-able, times as ISO 8601 UTC."""
        return {
            "id": self.id,
            "text": self.text,
            "count": self.count,
            "conversations": self.conversations,
            "reasons": self.reasons,
            "predicted": self.predicted,
            "confidence": round(self.confidence, 4),
            "first_seen": _iso(self.first_seen),
            "last_seen": _iso(self.last_seen),
        }


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat()


def _ready(stores: Stores) -> None:
    stores.ready_cases()  # review_labels is one of insights' tables


def _occurrences(
    stores: Stores, threshold: float, since: Optional[float]
) -> Dict[int, Occurrence]:
    """The queue's messages since ``since`` (unix time; None: all), by event id.

    The database finds them (each query on an index: the fallbacks, the
    confidences, and for each "did you mean" and each 转人工 the user's
    messages just before it); only those messages are read.
    """
    if not stores.ready_tracker():
        return {}
    engine = stores.tracker
    events = events_table.c
    reasons: Dict[int, Set[str]] = {}

    def recent(table: Any) -> Any:
        return table.c.timestamp >= since if since is not None else sa.true()

    fallbacks = sa.select(events.id).where(
        events.type_name == "user",
        recent(events_table),
        events.intent_name == FALLBACK_INTENT,
    )
    unsure = unsure_query(engine, threshold, since)
    action = events_table.alias("asked")
    clarified = sa.select(_user_before(action, 0)).where(
        action.c.action_name == CLARIFY_ACTION,
        action.c.type_name == "action",
        recent(action),
    )
    human = events_table.alias("human")
    handed = sa.select(
        *(_user_before(human, n) for n in range(HUMAN_WITHIN_TURNS))
    ).where(
        human.c.type_name == "user",
        human.c.intent_name == HUMAN_INTENT,
        recent(human),
    )

    def mark(ids: Iterable[Any], reason: str) -> None:
        for event_id in ids:
            if event_id is not None:
                reasons.setdefault(int(event_id), set()).add(reason)

    def read(connection: sa.engine.Connection) -> Dict[int, Occurrence]:
        mark((row[0] for row in connection.execute(fallbacks)), "fallback")
        mark((row[0] for row in connection.execute(unsure)), "low_confidence")
        mark((row[0] for row in connection.execute(clarified)), "did_you_mean")
        for row in connection.execute(handed):
            mark(row, "before_handoff")
        found: Dict[int, Occurrence] = {}
        ids = sorted(reasons)
        for start in range(0, len(ids), CHUNK):
            query = sa.select(
                events.id,
                events.sender_id,
                events.timestamp,
                events.intent_name,
                events.data,
            ).where(events.id.in_(ids[start : start + CHUNK]))
            for row in connection.execute(query):
                marked = reasons[int(row.id)]
                if marked == {"before_handoff"} and row.intent_name == HUMAN_INTENT:
                    continue  # asking again for a person is understood
                occurrence = _occurrence(row)
                if occurrence is not None:
                    occurrence.reasons |= marked
                    found[occurrence.event_id] = occurrence
        return found

    result: Dict[int, Occurrence] = stores.read(engine, read)
    return result


def unsure_query(
    engine: sa.engine.Engine, threshold: float, since: Optional[float]
) -> Any:
    """The ids of the user messages whose intent's confidence was below ``threshold``.

    On the confidence index: SQLite's planner would rather walk the (type,
    time) index and read every message's JSON, so it is told (INDEXED BY, which
    SQLAlchemy's SQLite dialect does not write).
    """
    events = events_table.c
    if engine.dialect.name == "sqlite":
        recent = " AND timestamp >= :since" if since is not None else ""
        query = sa.text(
            f"SELECT id FROM events INDEXED BY {CONFIDENCE_INDEX} "
            f"WHERE type_name = 'user' AND {CONFIDENCE_SQL['sqlite']} < :threshold"
            + recent
        ).bindparams(threshold=threshold)
        return query.bindparams(since=since) if since is not None else query
    return sa.select(events.id).where(
        events.type_name == "user",
        confidence_of(engine) < threshold,
        events.timestamp >= since if since is not None else sa.true(),
    )


def _user_before(event: Any, skip: int) -> Any:
    """SQL: the id of the sender's user message before ``event``.

    ``skip`` more back; read on the (sender, type, time) index.
    """
    user = events_table.alias(f"before_{skip}")
    return (
        sa.select(user.c.id)
        .where(
            user.c.sender_id == event.c.sender_id,
            user.c.type_name == "user",
            user.c.timestamp <= event.c.timestamp,
            user.c.id < event.c.id,
        )
        .order_by(user.c.timestamp.desc(), user.c.id.desc())
        .limit(1)
        .offset(skip)
        .scalar_subquery()
    )


def _occurrence(row: Any) -> Optional[Occurrence]:
    """A user event as a queue message; None for a button's payload or no text."""
    try:
        data = json.loads(row.data or "{}")
    except ValueError:
        return None
    text = str(data.get("text") or "").strip()
    if not text or text.startswith("/"):
        return None
    label, confidence = predicted_label(data.get("parse_data") or {})
    return Occurrence(
        event_id=int(row.id),
        sender_id=str(row.sender_id),
        timestamp=float(row.timestamp or 0.0),
        text=text,
        predicted=label,
        confidence=confidence,
    )


def _reviewed_ids(stores: Stores) -> Set[str]:
    _ready(stores)
    rows = stores.read(
        stores.cases, lambda c: c.execute(sa.select(labels_table.c.item_id)).all()
    )
    return {row[0] for row in rows}


def review_queue(
    stores: Stores,
    threshold: float,
    limit: Optional[int] = DEFAULT_LIMIT,
    since: Optional[datetime] = None,
    include_reviewed: bool = False,
) -> List[ReviewItem]:
    """The items to review, most frequent first (then the most recent).

    Items labelled before are left out unless ``include_reviewed``.
    """
    if limit is not None and not 1 <= limit <= MAX_LIMIT:
        raise ReviewError(f"limit must be 1-{MAX_LIMIT}")
    found = _occurrences(
        stores, threshold, since.timestamp() if since is not None else None
    )
    groups: Dict[str, List[Occurrence]] = {}
    for occurrence in found.values():
        key = dedup_key(occurrence.text)
        if key:
            groups.setdefault(key, []).append(occurrence)
    reviewed = set() if include_reviewed else _reviewed_ids(stores)
    items = []
    for key, occurrences in groups.items():
        identifier = item_id(key)
        if identifier in reviewed:
            continue
        occurrences.sort(key=lambda o: (o.timestamp, o.event_id))
        latest = occurrences[-1]
        predictions = Counter(o.predicted for o in occurrences)
        predicted = max(
            predictions, key=lambda label: (predictions[label], label or "")
        )
        reasons = set().union(*(o.reasons for o in occurrences))
        items.append(
            ReviewItem(
                id=identifier,
                key=key,
                text=masked(latest.text),
                count=len(occurrences),
                conversations=len({o.sender_id for o in occurrences}),
                reasons=[reason for reason in REASONS if reason in reasons],
                predicted=predicted,
                confidence=min(o.confidence for o in occurrences),
                first_seen=occurrences[0].timestamp,
                last_seen=latest.timestamp,
            )
        )
    items.sort(key=lambda item: (-item.count, -item.last_seen, item.key))
    _remember(items)
    return items if limit is None else items[:limit]


# The items this process listed lately, by id: labelling one of them (the
# reviewer's next click) needs no new pass over the events. Another process
# (or an item older than these) recomputes the queue.
_LISTED: OrderedDict[str, ReviewItem] = OrderedDict()
LISTED_KEPT = 20000


def _remember(items: Sequence[ReviewItem]) -> None:
    for item in items:
        _LISTED[item.id] = item
        _LISTED.move_to_end(item.id)
    while len(_LISTED) > LISTED_KEPT:
        _LISTED.popitem(last=False)


def _find_item(
    stores: Stores, identifier: str, threshold: float
) -> Optional[ReviewItem]:
    if identifier in _LISTED:
        return _LISTED[identifier]
    every = review_queue(stores, threshold, limit=None, include_reviewed=True)
    return next((item for item in every if item.id == identifier), None)


def label_item(
    stores: Stores,
    identifier: str,
    label: str,
    reviewer: str,
    threshold: float,
    labels: Optional[Sequence[str]] = None,
    now: Optional[datetime] = None,
) -> Dict[str, Any]:
    """Store a reviewer's label for a queue item (again: the new label counts).

    Raises ReviewError for a label that is not one of ``labels`` (default:
    allowed_labels()) or a bad reviewer name, UnknownItem for an id that is
    neither in the queue nor labelled before.
    """
    labels = allowed_labels() if labels is None else labels
    if label not in labels:
        raise ReviewError(f"unknown label {label!r}: use an intent or {NOISE!r}")
    reviewer = str(reviewer).strip()
    if not reviewer or len(reviewer) > MAX_REVIEWER_CHARS:
        raise ReviewError("reviewer must be a name of 1-64 characters")
    now = now or datetime.now(timezone.utc)
    _ready(stores)
    where = labels_table.c.item_id == identifier
    existing = stores.read(
        stores.cases,
        lambda c: c.execute(sa.select(labels_table).where(where)).mappings().first(),
    )
    if existing is not None:
        row = {**dict(existing), "label": label, "reviewer": reviewer}
    else:
        item = _find_item(stores, identifier, threshold)
        if item is None:
            raise UnknownItem(f"no review item {identifier}")
        row = {
            "item_id": item.id,
            "normalised": item.key,
            "text": item.text,
            "label": label,
            "reviewer": reviewer,
            "predicted": item.predicted,
            "confidence": item.confidence,
        }
    row["reviewed_at"] = now

    def upsert(connection: sa.engine.Connection) -> None:
        connection.execute(labels_table.delete().where(where))
        connection.execute(labels_table.insert(), row)

    stores.write(stores.cases, upsert)
    return _label_dict(row)


def _label_dict(row: Mapping[str, Any]) -> Dict[str, Any]:
    return {
        "id": row["item_id"],
        "text": row["text"],
        "label": row["label"],
        "reviewer": row["reviewer"],
        "reviewed_at": aware(row["reviewed_at"]).isoformat(),
        "predicted": row["predicted"],
    }


def reviewed(stores: Stores) -> List[Dict[str, Any]]:
    """Every label given, the latest first."""
    _ready(stores)
    query = sa.select(labels_table).order_by(labels_table.c.reviewed_at.desc())
    rows = stores.read(stores.cases, lambda c: c.execute(query).mappings().all())
    return [_label_dict(row) for row in rows]


def before_after(
    stores: Stores, parse: Callable[[str], Optional[str]]
) -> Dict[str, Any]:
    """How the NLU did on the reviewed messages then, and how ``parse`` does now.

    ``parse`` gives a message's label (the classifier's best full label, as
    predicted_label reads a parse). Messages labelled noise are not scored:
    they have no right intent.
    """
    every = reviewed(stores)
    rows = [row for row in every if row["label"] != NOISE]
    before = sum(row["predicted"] == row["label"] for row in rows)
    after = sum(parse(row["text"]) == row["label"] for row in rows)
    total = len(rows)
    return {
        "reviewed": len(every),
        "scored": total,
        "before": {"correct": before, "accuracy": before / total if total else None},
        "after": {"correct": after, "accuracy": after / total if total else None},
    }
