"""The reused validator accepts and refuses exactly what Rasa's own check does."""

from __future__ import annotations

from typing import Any, Dict

import pytest
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction

from bot_server import speedups

GOOD: Dict[str, Any] = {
    "events": [
        {"event": "slot", "name": "account_status", "value": "frozen"},
        {"event": "active_loop", "name": None},
    ],
    "responses": [{"response": "utter_lookup_found", "account_id": "demo_x"}],
}
BAD = [
    {"events": [{"name": "no event type"}]},
    {"events": "not a list"},
    {"responses": [42]},
    {"events": [{"event": 7}]},
]


@pytest.fixture
def rasa_check() -> Any:
    """Rasa's original method, whatever install() did to the class."""
    original = RemoteAction.__dict__["_validate_action_result"]
    if original is speedups.validate_action_result:
        import importlib

        import rasa.core.actions.action as module

        original = importlib.reload(module).RemoteAction._validate_action_result
    return original


def action() -> RemoteAction:
    return RemoteAction("action_x", None)


def test_a_good_response_passes_both() -> None:
    assert speedups.validate_action_result(action(), GOOD) is True


@pytest.mark.parametrize("response", BAD)
def test_bad_responses_fail_both_with_rasa_hint(rasa_check: Any, response: Any) -> None:
    with pytest.raises(ValidationError) as ours:
        speedups.validate_action_result(action(), response)
    with pytest.raises(ValidationError) as theirs:
        rasa_check(action(), response)
    assert "Failed to validate Action server response" in ours.value.message
    assert ours.value.message == theirs.value.message


def test_install_swaps_the_method_once() -> None:
    speedups.install()
    speedups.install()
    assert RemoteAction._validate_action_result is speedups.validate_action_result
