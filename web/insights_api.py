"""The supervisors' insights and review API, and their pages (docs/insights.md).

Mounted by web/server.py beside the desk (web/agent_api.py), whose sign-in it
uses: the desk's session cookie (no session: 401), the supervisor role (an
agent: 403), the CSRF header on every change. Thin handlers over insights/:

- ``GET /agent/api/stats?from=YYYY-MM-DD&to=YYYY-MM-DD&channel=``: the figures
  (insights/stats.py); a bad date or range is a 400.
- ``GET /agent/api/stats.csv?table=...&from&to&channel``: one table as CSV,
  UTF-8 with a BOM (Excel reads it as UTF-8), as an attachment.
- ``GET /agent/api/review?limit=&days=``: the review queue (insights/review.py),
  most frequent first, with the labels a reviewer may pick.
- ``POST /agent/api/review/{item_id}`` {label}: store a label with who and when.
- ``GET /agent/api/review/summary``: how many were reviewed, and how the bot
  did on them before (the intents predicted then) and after (the model Rasa
  serves now, asked through /model/parse).
- ``GET /agent/insights``, ``GET /agent/review``: the pages
  (web/static/agent/insights.html, review.html).

Everything that leaves here went through the input gate's masking once more
(mask_personal_data): the tracker holds masked text, but a value that slipped
into a store never reaches a page or a CSV file unmasked.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional

from aiohttp import web

from actions.services.sql import StoreUnavailable
from bot_server.pipeline.gate import mask_personal_data
from desk.relay import RasaRelay, RelayError
from desk.store import Session
from insights import review
from insights import stats as figures
from insights.stores import Stores
from web import agent_api
from web.agent_api import fail, json_body, json_response, off_loop
from web.agent_api import supervisor_session as supervisor

logger = logging.getLogger(__name__)

API = agent_api.API
PAGES: Mapping[str, str] = {
    "/agent/insights": "agent/insights.html",
    "/agent/review": "agent/review.html",
}
DEFAULT_QUEUE_LIMIT = 100
MAX_QUEUE_LIMIT = review.MAX_LIMIT
# The queue's window: the last 30 days by default (review.DEFAULT_DAYS).
MAX_QUEUE_DAYS = 400
CSV_BOM = "\ufeff"
# An item id of the review queue (insights/review.py item_id: hex).
ITEM_ID = re.compile(r"^[0-9a-f]{1,64}$")
# Messages sent to /model/parse at once (Rasa parses one in a few ms).
PARSE_CONCURRENCY = 4
PARSE_DOWN = "无法连接机器人服务器，暂时算不出当前模型的准确率 (cannot reach Rasa)"


def mask(value: Any) -> Any:
    """Every text inside ``value`` (JSON-like) masked as the input gate masks."""
    if isinstance(value, str):
        return mask_personal_data(value).text
    if isinstance(value, dict):
        return {key: mask(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask(item) for item in value]
    return value


@dataclass
class Insights:
    """What the handlers work with (web/server.py builds it from the settings)."""

    stores: Stores
    # Rasa's HTTP API (desk/relay.py): its /model/parse for the "after" figure.
    rasa: RasaRelay
    # Messages the NLU was less sure of go to the review queue.
    review_below: float = 0.82
    # The labels a reviewer may give (the domain's intents and "noise").
    labels: List[str] = field(default_factory=review.allowed_labels)
    today: Callable[[], date] = lambda: datetime.now(timezone.utc).date()

    @classmethod
    def from_urls(
        cls,
        tracker_url: str,
        case_url: str,
        rasa_url: str,
        rasa_token: Optional[str],
        review_below: float = 0.82,
    ) -> Insights:
        """From the stores' URLs and where Rasa's HTTP API is."""
        return cls(
            stores=Stores.from_urls(tracker_url, case_url),
            rasa=RasaRelay(rasa_url, rasa_token),
            review_below=review_below,
        )


INSIGHTS = web.AppKey("insights", Insights)
STATIC = web.AppKey("insights_static", Path)


async def supervisor_change(request: web.Request) -> Session:
    """A change: the desk's session (401), supervisor (403), CSRF token (403)."""
    agent_api.not_cross_site(request)
    session = await supervisor(request)
    agent_api.check_csrf(request, session)
    return session


async def _figures(request: web.Request) -> Dict[str, Any]:
    insights = request.app[INSIGHTS]
    try:
        start, end, channel = figures.parse_query(request.query, insights.today())
    except figures.StatsQueryError as error:
        fail(web.HTTPBadRequest, str(error))
    found: Dict[str, Any] = await off_loop(
        figures.stats, insights.stores, start, end, channel
    )
    masked: Dict[str, Any] = mask(found)
    return masked


async def stats(request: web.Request) -> web.StreamResponse:
    """GET stats?from=&to=&channel=: every figure of the insights page."""
    await supervisor(request)
    return json_response(await _figures(request))


async def stats_csv(request: web.Request) -> web.StreamResponse:
    """GET stats.csv?table=...: one table, for a spreadsheet."""
    await supervisor(request)
    table = request.query.get("table", "")
    if table not in figures.CSV_TABLES:
        fail(
            web.HTTPBadRequest,
            f"table 应为 {', '.join(figures.CSV_TABLES)} 之一 "
            f"(table must be one of {', '.join(figures.CSV_TABLES)})",
        )
    found = await _figures(request)
    text = mask_personal_data(figures.stats_csv(found, table)).text
    period = f"{found['range']['from']}_{found['range']['to']}"
    return web.Response(
        body=(CSV_BOM + text).encode("utf-8"),
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": (
                f'attachment; filename="jiebei-{table}-{period}.csv"'
            ),
            "Cache-Control": "no-store",
        },
    )


def _whole(request: web.Request, name: str, default: int, most: int) -> int:
    """A whole-number query parameter from 1 to ``most``, or a 400."""
    raw = request.query.get(name, str(default))
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= most:
        fail(
            web.HTTPBadRequest,
            f"{name} 应为 1 到 {most} 的整数 "
            f"({name} must be a whole number from 1 to {most})",
        )
    return int(raw)


async def review_queue(request: web.Request) -> web.StreamResponse:
    """GET review?limit=&days=&reviewed=1|0: the queue, most frequent first.

    The messages of the last ``days`` (default 30); items labelled before are
    in it (with their label, who and when) unless ``reviewed=0``.
    """
    await supervisor(request)
    insights = request.app[INSIGHTS]
    limit = _whole(request, "limit", DEFAULT_QUEUE_LIMIT, MAX_QUEUE_LIMIT)
    days = _whole(request, "days", review.DEFAULT_DAYS, MAX_QUEUE_DAYS)
    include = request.query.get("reviewed", "1")
    if include not in ("0", "1"):
        fail(web.HTTPBadRequest, "reviewed 应为 0 或 1 (reviewed must be 0 or 1)")
    since = datetime.now(timezone.utc) - timedelta(days=days)
    items = await off_loop(
        lambda: review.review_queue(
            insights.stores,
            insights.review_below,
            limit=limit,
            since=since,
            include_reviewed=include == "1",
        )
    )
    given = {row["id"]: row for row in await off_loop(review.reviewed, insights.stores)}
    names = await _agent_names(request)
    found = []
    for item in items:
        shown = {**item.as_dict(), "label": None, "reviewer": None}
        label = given.get(item.id)
        if label is not None:
            shown.update(_label_fields(label, names))
        found.append(shown)
    return json_response(
        mask({"items": found, "labels": insights.labels, "noise_label": review.NOISE})
    )


async def label_item(request: web.Request) -> web.StreamResponse:
    """POST review/{item_id} {label}: a supervisor's label, stored with who and when."""
    session = await supervisor_change(request)
    insights = request.app[INSIGHTS]
    identifier = request.match_info["item_id"]
    if not ITEM_ID.match(identifier):
        fail(web.HTTPNotFound, "没有这条待标注消息 (no such review item)")
    body = await json_body(request)
    label = body.get("label")
    if not isinstance(label, str) or label not in insights.labels:
        fail(
            web.HTTPBadRequest,
            f"未知的标注 {str(label)[:64]!r}：请选一个意图或 {review.NOISE} "
            f"(unknown label: use an intent or {review.NOISE})",
        )
    try:
        stored = await off_loop(
            lambda: review.label_item(
                insights.stores,
                identifier,
                label,
                session.agent.username,
                insights.review_below,
                labels=insights.labels,
            )
        )
    except review.UnknownItem:
        fail(web.HTTPNotFound, "没有这条待标注消息 (no such review item)")
    except review.ReviewError as error:
        fail(web.HTTPBadRequest, str(error))
    names = {session.agent.username: session.agent.display_name}
    return json_response(mask({"item": {**stored, **_label_fields(stored, names)}}))


def _label_fields(label: Mapping[str, Any], names: Mapping[str, str]) -> Dict[str, Any]:
    """The label of an item as the page shows it: what, who (and their name), when."""
    return {
        "label": label["label"],
        "reviewer": label["reviewer"],
        "reviewer_name": names.get(label["reviewer"], label["reviewer"]),
        "reviewed_at": label["reviewed_at"],
    }


async def _agent_names(request: web.Request) -> Dict[str, str]:
    agents = await off_loop(request.app[agent_api.DESK].store.agents)
    return {agent.username: agent.display_name for agent in agents}


async def parse_all(rasa: RasaRelay, texts: Iterable[str]) -> Dict[str, Any]:
    """Each distinct text through /model/parse, a few at once; a failure raises."""
    distinct = list(dict.fromkeys(texts))
    gate = asyncio.Semaphore(PARSE_CONCURRENCY)

    async def one(text: str) -> Dict[str, Any]:
        async with gate:
            return await rasa.parse(text)

    found = await asyncio.gather(*(one(text) for text in distinct))
    return dict(zip(distinct, found, strict=True))


async def review_summary(request: web.Request) -> web.StreamResponse:
    """GET review/summary: how many were reviewed; accuracy before and after.

    Before: the intents the NLU predicted when the users wrote. After: what the
    model Rasa serves now predicts for the same messages (/model/parse). Rasa
    unreachable: the after figure carries an error, the rest is answered.
    """
    await supervisor(request)
    insights = request.app[INSIGHTS]
    rows = await off_loop(review.reviewed, insights.stores)
    texts = [row["text"] for row in rows if row["label"] != review.NOISE]
    error: Optional[str] = None
    parsed: Dict[str, Any] = {}
    try:
        parsed = await parse_all(insights.rasa, texts)
    except RelayError as failure:
        logger.error("insights: /model/parse failed: %s", failure)
        error = PARSE_DOWN

    def label_now(text: str) -> Optional[str]:
        found = parsed.get(text)
        return review.predicted_label(found)[0] if found is not None else None

    figures_now: Dict[str, Any] = await off_loop(
        review.before_after, insights.stores, label_now
    )
    total = figures_now["scored"]
    before = {**figures_now["before"], "total": total}
    after = {**figures_now["after"], "total": total}
    if error is not None:
        after = {"correct": None, "accuracy": None, "total": total, "error": error}
    return json_response(
        {
            "reviewed": figures_now["reviewed"],
            "scored": total,
            "before": before,
            "after": after,
        }
    )


async def page(request: web.Request) -> web.StreamResponse:
    """A supervisor's page; its script asks GET me and sends a stranger to /agent/."""
    path = request.app[STATIC] / PAGES[request.path.rstrip("/")]
    return web.FileResponse(
        path,
        headers={
            "Content-Type": "text/html; charset=utf-8",
            "Cache-Control": "no-cache",
        },
    )


async def _prepare(app: web.Application) -> None:
    """Create the stores' tables and indexes before the first requests.

    Done lazily by two requests at once (the review page asks for the queue
    and the summary together), SQLite's CREATE TABLE of one fails with "table
    already exists"; one call at start leaves nothing to race for.
    """
    stores = app[INSIGHTS].stores
    try:
        await off_loop(review.reviewed, stores)  # the case store, review_labels
        await off_loop(stores.ready_tracker)
    except StoreUnavailable as error:
        logger.error("insights: stores not ready at start, tried on use: %s", error)


async def _close(app: web.Application) -> None:
    await app[INSIGHTS].rasa.close()


def setup(app: web.Application, insights: Insights, static_dir: Path) -> None:
    """Mount the insights API and pages (after the desk's agent_api.setup)."""
    app[INSIGHTS] = insights
    app[STATIC] = static_dir
    app.on_startup.append(_prepare)  # type: ignore[arg-type]
    app.on_cleanup.append(_close)  # type: ignore[arg-type]
    routes = app.router
    routes.add_get(f"{API}/stats", stats)
    routes.add_get(f"{API}/stats.csv", stats_csv)
    routes.add_get(f"{API}/review", review_queue)
    routes.add_get(f"{API}/review/summary", review_summary)
    routes.add_post(f"{API}/review/{{item_id}}", label_item)
    for path in PAGES:
        routes.add_get(path, page)
        routes.add_get(path + "/", page)
