"""Stage 3 of the pipeline, the reply guard: a user message never ends in silence.

Rasa answers nothing when a custom action fails (action server down or
erroring: the processor logs the error and drops the action's events), when the
tracker store raises, or while the action server hangs (Rasa waits up to five
minutes for it). For each message that passed the rate limit and the gate,
:func:`guard` hands it on to Rasa and:

- runs it with a deadline (``REPLY_DEADLINE_SECONDS``, default 8 s); past it the
  user is told at once while the work goes on in the background, so nothing
  the bot does later is cut off half way;
- notices a failed custom action during this message (a logging filter on the
  processor's error report, scoped to the message with a context variable,
  so concurrent conversations do not see each other's failures);
- after any of these, sends ``utter_service_trouble`` from the domain: an
  apology and the way to a human agent.

Any other message the bot would leave unanswered gets the same apology, except
in a conversation paused by a handoff, where the case on the agent desk
(actions/services/cases.py) decides:

- the case waits: its place in the queue and the expected wait, or outside the
  desk's service hours when agents are back (desk/waiting.py;
  ``utter_handoff_queue*``);
- an agent has it: nothing: the agent reads the message live and answers;
- no open case, or the case store cannot be read in time:
  ``utter_handoff_waiting``.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Union

from actions.services.cases import CaseStore
from actions.services.sql import StoreUnavailable
from bot_server.pipeline.inbound import Inbound, Next
from desk.waiting import (
    CLOSED,
    QUEUED,
    QUEUED_WITH_WAIT,
    UNQUEUED,
    WaitingNews,
    waiting_news,
)
from settings import rasa_server_settings

logger = logging.getLogger(__name__)

TROUBLE_RESPONSE = "utter_service_trouble"
PAUSED_RESPONSE = "utter_handoff_waiting"
# The answer to a message while the case waits, by what desk/waiting.py decided.
QUEUE_RESPONSES = {
    CLOSED: "utter_handoff_queue_closed",
    QUEUED_WITH_WAIT: "utter_handoff_queue_with_wait",
    QUEUED: "utter_handoff_queue",
    UNQUEUED: PAUSED_RESPONSE,
}
# Seconds the case store may take (per statement) before the user gets the
# plain waiting message instead of the place in the queue.
CASE_LOOKUP_TIMEOUT_S = 1.0
# An agent has the case: the bot stays silent.
AGENT_HAS_IT = "agent_has_it"
# What rasa.core.processor logs (rasa 3.6, pinned) when a custom action raised.
ACTION_FAILURE_PREFIX = "Encountered an exception while running action"
PROCESSOR_LOGGER = "rasa.core.processor"


@dataclass
class MessageOutcome:
    """What went wrong while one user message was handled."""

    failed_actions: List[str] = field(default_factory=list)


_current: contextvars.ContextVar[Optional[MessageOutcome]] = contextvars.ContextVar(
    "jiebei_message_outcome", default=None
)


class ActionFailureFilter(logging.Filter):
    """Records a failed custom action on the message being handled."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Note the failure; never drop the record."""
        outcome = _current.get()
        text = str(record.msg)
        if outcome is not None and text.startswith(ACTION_FAILURE_PREFIX):
            quoted = text.split("'")
            outcome.failed_actions.append(quoted[1] if len(quoted) > 2 else "?")
        return True


_filter_installed = False


def install_failure_filter() -> None:
    """Attach the filter to the processor's logger once per process."""
    global _filter_installed
    if not _filter_installed:
        logging.getLogger(PROCESSOR_LOGGER).addFilter(ActionFailureFilter())
        _filter_installed = True


async def _is_paused(agent: Any, sender_id: str) -> bool:
    if agent is None:
        return False
    try:
        tracker = await agent.tracker_store.retrieve(sender_id)
    except Exception:
        return False
    return bool(tracker is not None and tracker.is_paused())


@functools.lru_cache(maxsize=2)
def _case_store(url: str) -> CaseStore:
    return CaseStore(url, CASE_LOOKUP_TIMEOUT_S)


def read_case(sender_id: str) -> Union[str, WaitingNews, None]:
    """What the desk has for a paused conversation (blocking; StoreUnavailable).

    None: no open case; :data:`AGENT_HAS_IT`: an agent has claimed it; else
    what to tell the user about the queue.
    """
    settings = rasa_server_settings()
    store = _case_store(settings.case_store_url)
    case = store.open_case_of(sender_id)
    if case is None:
        return None
    if case["status"] != "waiting":
        return AGENT_HAS_IT
    now = datetime.now(timezone.utc)
    created = case["created_at"]
    if created.tzinfo is None:  # SQLite gives UTC back without its zone
        created = created.replace(tzinfo=timezone.utc)
    return waiting_news(
        settings.desk_hours,
        now,
        store.queue_position(case["case_id"]),
        store.typical_wait_s(),
        waited_s=(now - created).total_seconds(),
    )


async def _answer_paused(inbound: Inbound) -> None:
    """The answer in a conversation paused by a handoff (see the module's doc)."""
    loop = asyncio.get_running_loop()
    try:
        found = await asyncio.wait_for(
            loop.run_in_executor(None, read_case, inbound.sender),
            3 * CASE_LOOKUP_TIMEOUT_S + 0.5,
        )
    except (StoreUnavailable, asyncio.TimeoutError) as error:
        logger.warning(
            "case of paused %s not read: %s", inbound.sender, error or "timeout"
        )
        found = None
    if found == AGENT_HAS_IT:
        logger.debug("%s: an agent has the case; the bot stays silent", inbound.sender)
        return
    if isinstance(found, WaitingNews):
        await inbound.answer(QUEUE_RESPONSES[found.kind], **found.values)
        return
    await inbound.answer(PAUSED_RESPONSE)


async def _run_with_deadline(inbound: Inbound, then: Next) -> bool:
    """Hand the message on; True when it went wrong (error, deadline, failed action)."""
    outcome = MessageOutcome()

    async def run() -> None:
        _current.set(outcome)  # this task's context only: one message's failures
        await then(inbound)

    task = asyncio.ensure_future(run())
    trouble = False
    deadline = rasa_server_settings().reply_deadline_s
    try:
        await asyncio.wait_for(asyncio.shield(task), deadline)
    except asyncio.TimeoutError:
        logger.error(
            "no reply for %s within %.1fs; answering now, work goes on",
            inbound.sender,
            deadline,
        )
        trouble = True
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("handling a message of %s failed", inbound.sender)
        trouble = True
    if outcome.failed_actions:
        logger.error(
            "custom action(s) failed for %s: %s",
            inbound.sender,
            ", ".join(outcome.failed_actions),
        )
        trouble = True
    return trouble


async def guard(inbound: Inbound, then: Next) -> None:
    """The stage: hand the message on and make sure the user got an answer."""
    install_failure_filter()
    counted = _CountingChannel.wrap(inbound)
    trouble = await _run_with_deadline(inbound, then)
    if not trouble and counted.sent > 0:
        return
    if not trouble and await _is_paused(inbound.agent, inbound.sender):
        await _answer_paused(inbound)
        return
    if not trouble:
        logger.error(
            "the bot sent nothing to %s; answering with the apology", inbound.sender
        )
    await inbound.answer(TROUBLE_RESPONSE)


class _CountingChannel:
    """Counts what the bot sent for one message (wraps the channel's send)."""

    def __init__(self) -> None:
        self.sent = 0

    @classmethod
    def wrap(cls, inbound: Inbound) -> _CountingChannel:
        counter = cls()
        channel = inbound.channel
        original = channel.send_response

        async def send_response(recipient_id: str, msg: Dict[str, Any]) -> None:
            counter.sent += 1
            await original(recipient_id, msg)

        channel.send_response = send_response
        return counter
