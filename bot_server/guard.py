"""The reply guard: a user message never ends in silence.

Rasa answers nothing when a custom action fails (action server down or
erroring: the processor logs the error and drops the action's events), when the
tracker store raises, or while the action server hangs (Rasa waits up to five
minutes for it). The guard wraps the handler every input channel calls and,
for each message:

- runs it with a deadline (``REPLY_DEADLINE_SECONDS``, default 8 s); past it the
  user is told at once while the work goes on in the background, so nothing
  the bot does later is cut off half way;
- notices a failed custom action during this message (a logging filter on the
  processor's error report, scoped to the message with a context variable,
  so concurrent conversations do not see each other's failures);
- after any of these, sends ``utter_service_trouble`` from the domain: an
  apology and the way to a human agent.

Any other message the bot would leave unanswered gets the same apology, except
in a conversation paused by a handoff, which gets ``utter_handoff_waiting``.

Before all that, a sender over the rate limit (bot_server/ratelimit.py) gets
``utter_rate_limited`` and the input gate (bot_server/gate.py) cleans the text;
a message with nothing left gets ``utter_empty_message``. Neither reaches the
bot, the tracker store or the logs.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple

from rasa.core.channels.channel import UserMessage

from bot_server import ratelimit
from bot_server.gate import GateResult, gate

logger = logging.getLogger(__name__)

Handler = Callable[[UserMessage], Awaitable[Any]]

TROUBLE_RESPONSE = "utter_service_trouble"
TRUNCATED_RESPONSE = "utter_message_truncated"
PII_RESPONSE = "utter_pii_warning"
SECRET_RESPONSE = "utter_secret_warning"
PAUSED_RESPONSE = "utter_handoff_waiting"
EMPTY_RESPONSE = "utter_empty_message"
RATE_LIMITED_RESPONSE = "utter_rate_limited"
BAD_MESSAGE_RESPONSE = "utter_bad_message"
DEFAULT_DEADLINE_S = 8.0
# What rasa.core.processor logs (rasa 3.6, pinned) when a custom action raised.
ACTION_FAILURE_PREFIX = "Encountered an exception while running action"
PROCESSOR_LOGGER = "rasa.core.processor"

# Used only when the loaded model's domain lacks the response (a test checks
# that the domain has it): better an answer than silence.
LAST_RESORT_TEXT = (
    "抱歉，系统暂时出了点问题。请稍后再试，"
    "或在支付宝 → 我的 → 我的客服 里联系人工客服。"
)


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


def reply_deadline_s() -> float:
    """Seconds a user waits at most before the guard answers."""
    raw = os.environ.get("REPLY_DEADLINE_SECONDS", "")
    try:
        value = float(raw) if raw else DEFAULT_DEADLINE_S
    except ValueError:
        logger.error(
            "REPLY_DEADLINE_SECONDS=%r is not a number; using %s",
            raw,
            DEFAULT_DEADLINE_S,
        )
        return DEFAULT_DEADLINE_S
    return value if value > 0 else DEFAULT_DEADLINE_S


def current_agent() -> Any:
    """The agent of the running Rasa server, or None (not loaded, or no app)."""
    try:
        from sanic import Sanic

        return getattr(Sanic.get_app().ctx, "agent", None)
    except Exception:  # no app registered (unit tests) or several apps
        return None


async def render(
    agent: Any, response: str, sender_id: str, channel: str
) -> Dict[str, Any]:
    """A domain response as a message dict (text, buttons), or the last resort."""
    if agent is not None and response in getattr(agent.domain, "responses", {}):
        from rasa.shared.core.trackers import DialogueStateTracker

        tracker = DialogueStateTracker.from_events(
            sender_id, [], slots=agent.domain.slots
        )
        message = await agent.nlg.generate(response, tracker, channel)
        if message:
            return dict(message)
    logger.error(
        "response %s missing from the loaded domain; using the built-in text", response
    )
    return {"text": LAST_RESORT_TEXT}


async def _is_paused(agent: Any, sender_id: str) -> bool:
    if agent is None:
        return False
    try:
        tracker = await agent.tracker_store.retrieve(sender_id)
    except Exception:
        return False
    return bool(tracker is not None and tracker.is_paused())


def button_payloads(agent: Any) -> frozenset[str]:
    """Our own buttons' ``/intent`` payloads: the gate lets exactly these pass.

    Read once per loaded domain (a new model brings a new domain object), not
    on every message.
    """
    domain = getattr(agent, "domain", None)
    cached = _payload_cache.get(id(domain))
    if cached is not None and cached[0] is domain:
        return cached[1]
    responses = getattr(domain, "responses", {}) or {}
    payloads = frozenset(
        str(button.get("payload"))
        for variations in responses.values()
        for variation in variations
        for button in variation.get("buttons") or []
        if str(button.get("payload", "")).startswith("/")
    )
    _payload_cache.clear()  # one loaded domain at a time
    _payload_cache[id(domain)] = (domain, payloads)
    return payloads


_payload_cache: Dict[int, Tuple[Any, frozenset[str]]] = {}


def gate_notices(result: GateResult) -> list[str]:
    """What the user is told about what the gate did, in this order."""
    notices = []
    if result.truncated:
        notices.append(TRUNCATED_RESPONSE)
    if result.secret_offered:
        notices.append(SECRET_RESPONSE)
    if result.masked:
        notices.append(PII_RESPONSE)
    return notices


def guarded(
    handler: Handler, agent_getter: Callable[[], Any] = current_agent
) -> Handler:
    """Wrap an input channel's message handler with the reply guard."""
    install_failure_filter()

    async def handle(message: UserMessage) -> None:
        outcome = MessageOutcome()
        sender = message.sender_id or "default"
        channel = message.output_channel
        agent = agent_getter()
        source = message.input_channel or channel.name()

        async def answer(response: str) -> None:
            """Send one of the guard's domain responses to this sender."""
            await channel.send_response(
                sender, await render(agent, response, sender, channel.name())
            )

        decision = await ratelimit.allow(source, sender)
        if not decision.allowed:
            logger.warning(
                "rate limit: message of %s on %s not processed (retry in %ss)",
                sender,
                source,
                decision.retry_after_s,
            )
            await answer(RATE_LIMITED_RESPONSE)
            return
        text = message.text if isinstance(message.text, str) else ""
        result = gate(text, button_payloads(agent))
        if result.empty:
            await answer(EMPTY_RESPONSE)
            return
        message.text = result.text
        if result.masked or result.secret_offered or result.truncated:
            logger.info(
                "gate for %s: masked %s, secret %s, truncated %s",
                sender,
                result.masked,
                result.secret_offered,
                result.truncated,
            )
        for notice in gate_notices(result):
            await answer(notice)
        counted = _CountingChannel.wrap(message)

        async def run() -> None:
            _current.set(outcome)
            await handler(message)

        task = asyncio.ensure_future(run())
        trouble = False
        deadline = reply_deadline_s()
        try:
            await asyncio.wait_for(asyncio.shield(task), deadline)
        except asyncio.TimeoutError:
            logger.error(
                "no reply for %s within %.1fs; answering now, work goes on",
                sender,
                deadline,
            )
            trouble = True
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("handling a message of %s failed", sender)
            trouble = True
        if outcome.failed_actions:
            logger.error(
                "custom action(s) failed for %s: %s",
                sender,
                ", ".join(outcome.failed_actions),
            )
            trouble = True
        if not trouble and counted.sent > 0:
            return
        if not trouble and await _is_paused(agent, sender):
            await answer(PAUSED_RESPONSE)
            return
        if not trouble:
            logger.error(
                "the bot sent nothing to %s; answering with the apology", sender
            )
        await answer(TROUBLE_RESPONSE)

    return handle


class _CountingChannel:
    """Counts what the bot sent for one message (wraps the channel's send)."""

    def __init__(self) -> None:
        self.sent = 0

    @classmethod
    def wrap(cls, message: UserMessage) -> _CountingChannel:
        counter = cls()
        channel = message.output_channel
        original = channel.send_response

        async def send_response(recipient_id: str, msg: Dict[str, Any]) -> None:
            counter.sent += 1
            await original(recipient_id, msg)

        channel.send_response = send_response
        return counter
