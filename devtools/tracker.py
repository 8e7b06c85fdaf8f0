"""A tracker factory for the action tests: slots and messages as arguments."""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Tracker


def make_tracker(
    sender_id: str = "test_user",
    slots: Dict[str, Any] | None = None,
    latest_message: Dict[str, Any] | None = None,
    events: List[Dict[str, Any]] | None = None,
) -> Tracker:
    """A rasa_sdk Tracker as the action server would receive it."""
    return Tracker(
        sender_id=sender_id,
        slots=slots or {},
        latest_message=latest_message or {},
        events=events or [],
        paused=False,
        followup_action=None,
        active_loop={},
        latest_action_name=None,
    )
