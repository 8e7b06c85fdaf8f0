"""The one renderer of the replies the server sends itself.

The pipeline's answers (rate limited, empty message, apology, ...) and the
channels' own sentences (the WeChat-style button lines, "text only") are
domain responses, rendered here through the loaded agent's NLG as Rasa renders
a bot's ``utter_*``. A response the loaded domain lacks (no model loaded yet,
or a model trained before the response was added) is reported once per
process; the caller picks its fallback, and an answer the user must get falls
back to :data:`LAST_RESORT_TEXT`.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Optional, Set

logger = logging.getLogger(__name__)

# Used only when the loaded model's domain lacks the response (a test checks
# that the domain has it): better an answer than silence.
LAST_RESORT_TEXT = (
    "抱歉，系统暂时出了点问题。请稍后再试，"
    "或在支付宝 → 我的 → 我的客服 里联系人工客服。"
)

_reported_missing: Set[str] = set()


async def render(
    agent: Any, response: str, sender_id: str, channel: str, **values: Any
) -> Optional[Dict[str, Any]]:
    """A domain response as a message dict (text, buttons), or None if unavailable.

    Args:
        agent: Rasa's agent, or None while no model is loaded.
        response: the ``utter_*`` name.
        sender_id: the conversation the reply is for.
        channel: the output channel's name (responses may have channel variants).
        **values: template variables of the response.
    """
    domain = getattr(agent, "domain", None)
    if domain is not None and response in getattr(domain, "responses", {}):
        from rasa.shared.core.trackers import DialogueStateTracker

        tracker = DialogueStateTracker.from_events(sender_id, [], slots=domain.slots)
        message = await agent.nlg.generate(response, tracker, channel, **values)
        if message:
            return dict(message)
    report_missing(response, loaded=domain is not None)
    return None


async def render_answer(
    agent: Any, response: str, sender_id: str, channel: str, **values: Any
) -> Dict[str, Any]:
    """A reply the user must get: the response, or the last-resort text."""
    message = await render(agent, response, sender_id, channel, **values)
    return message if message is not None else {"text": LAST_RESORT_TEXT}


async def render_text(
    agent: Any, response: str, sender_id: str, channel: str, **values: Any
) -> Optional[str]:
    """Only the text of a rendered response (a line in a longer message), or None."""
    message = await render(agent, response, sender_id, channel, **values)
    content = (message or {}).get("text")
    return str(content) if content else None


def report_missing(response: str, loaded: bool = True) -> None:
    """Log once per process that a response could not be rendered."""
    if response in _reported_missing:
        return
    _reported_missing.add(response)
    logger.error(
        "response %s missing (%s); a built-in fallback is used meanwhile",
        response,
        "retrain: make train" if loaded else "no model loaded",
    )
