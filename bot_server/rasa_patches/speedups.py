"""Measured hot spots of Rasa 3.6's server, removed without changing behaviour.

Found with py-spy on the Rasa server under benchmark-style load:

1. ``RemoteAction._validate_action_result`` (46% of the server's CPU): for every
   custom action call Rasa calls ``jsonschema.validate()``, which checks the
   response schema against the JSON Schema meta-schema and builds a new
   validator each time. Ours does what ``jsonschema.validate()`` does (the
   validator class it would pick for ``RemoteAction.action_response_format_spec()``,
   the best-matching error, Rasa's hint appended) with one validator built and
   checked once: the same responses pass, the same malformed ones raise the
   same ``ValidationError`` (37 → 8 ms for a 22-event response).
2. ``Event.resolve_by_type`` (15% after the first fix): every event read back
   from the tracker store or the action server walks the whole ``Event`` class
   tree (``all_subclasses``) to find its class. Ours looks the type name up in
   a table built from that same walk, in the same order (the first class with
   a name wins, as in Rasa), rebuilt on a miss so that a class defined later is
   still found, and falls back to Rasa's method for what the table lacks
   (the old "topic" events, defaults, the error for unknown names).

``install()`` is called by ``bot_server.rasa_patches.install()``, after the
Rasa version check, when Rasa loads our channels or stores. Tests compare both
with Rasa's originals.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Dict, Optional, Type

import rasa.shared.utils.common
from jsonschema.exceptions import best_match
from jsonschema.validators import validator_for
from rasa.core.actions.action import RemoteAction
from rasa.shared.constants import DOCS_BASE_URL
from rasa.shared.core.events import Event

_installed = False
RASA_RESOLVE_BY_TYPE: Callable[..., Optional[Type[Event]]] = Event.resolve_by_type
_event_classes: Dict[str, Type[Event]] = {}


@functools.lru_cache(maxsize=1)
def response_validator() -> Any:
    """The validator of action server responses, built (and its schema checked) once."""
    schema = RemoteAction.action_response_format_spec()
    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def validate_action_result(self: RemoteAction, result: Dict[str, Any]) -> bool:
    """Rasa's check of an action server response, with the validator reused."""
    error = best_match(response_validator().iter_errors(result))
    if error is not None:
        error.message += (
            ". Failed to validate Action server response from API, "
            "make sure your response from the Action endpoint is valid. "
            "For more information about the format visit "
            f"{DOCS_BASE_URL}/custom-actions"
        )
        raise error
    return True


def _rebuild_event_table() -> None:
    table: Dict[str, Type[Event]] = {}
    for cls in rasa.shared.utils.common.all_subclasses(Event):
        table.setdefault(cls.type_name, cls)
    _event_classes.clear()
    _event_classes.update(table)


def resolve_event_type(
    type_name: str, default: Optional[Type[Event]] = None
) -> Optional[Type[Event]]:
    """Rasa's ``Event.resolve_by_type`` through a table instead of a class walk."""
    found = _event_classes.get(type_name)
    if found is None:
        _rebuild_event_table()
        found = _event_classes.get(type_name)
    if found is not None:
        return found
    return RASA_RESOLVE_BY_TYPE(type_name, default)


def install() -> None:
    """Swap both in once per process."""
    global _installed
    if not _installed:
        setattr(RemoteAction, "_validate_action_result", validate_action_result)  # noqa: B010
        setattr(Event, "resolve_by_type", staticmethod(resolve_event_type))  # noqa: B010
        _installed = True
