"""Helpers of the action tests: what an action said and set, a user message, a record."""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk.executor import CollectingDispatcher

DOMAIN: Dict[str, Any] = {}


def responses(dispatcher: CollectingDispatcher) -> List[str]:
    return [m["response"] for m in dispatcher.messages]


def slots(events: List[Dict[str, Any]]) -> Dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def user(text: str, intent: str) -> Dict[str, Any]:
    return {"text": text, "intent": {"name": intent, "confidence": 0.9}, "entities": []}


def fixture_record(account_id: str) -> Dict[str, Any]:
    """A fixture account's record as the account_record slot keeps it."""
    from actions.services.accounts import load_fixtures

    return load_fixtures()[account_id].to_dict()
