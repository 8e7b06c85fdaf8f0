"""The speedups (rasa_patches/speedups.py) accept and refuse exactly what Rasa does."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction

from bot_server.rasa_patches import speedups

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


def test_install_swaps_the_methods_once() -> None:
    speedups.install()
    speedups.install()
    assert RemoteAction._validate_action_result is speedups.validate_action_result
    from rasa.shared.core.events import Event

    assert Event.resolve_by_type is speedups.resolve_event_type


def all_event_type_names() -> List[str]:
    import rasa.shared.utils.common
    from rasa.shared.core.events import Event

    return sorted({c.type_name for c in rasa.shared.utils.common.all_subclasses(Event)})


@pytest.mark.parametrize("type_name", all_event_type_names())
def test_every_event_type_resolves_to_rasa_s_class(type_name: str) -> None:
    assert speedups.resolve_event_type(type_name) is speedups.RASA_RESOLVE_BY_TYPE(
        type_name
    )


def test_rasa_s_special_cases_are_kept() -> None:
    from rasa.shared.core.events import SlotSet

    assert speedups.resolve_event_type("topic") is None
    assert speedups.resolve_event_type("no_such", SlotSet) is SlotSet
    with pytest.raises(ValueError, match="Unknown event name"):
        speedups.resolve_event_type("no_such")


def test_an_event_class_defined_later_is_found() -> None:
    from rasa.shared.core.events import Event

    speedups.resolve_event_type("slot")  # the table exists now

    class LateEvent(Event):
        type_name = "jiebei_late_event_for_test"

        def __eq__(self, other: Any) -> bool:
            return isinstance(other, LateEvent)

        def __hash__(self) -> int:
            return 1

        def as_story_string(self) -> None:
            return None

    assert speedups.resolve_event_type("jiebei_late_event_for_test") is LateEvent
