"""A measured hot spot of Rasa 3.6's server, removed without changing behaviour.

Under load (py-spy on the Rasa server during `make bench`-style conversations)
46% of the server's CPU went to ``RemoteAction._validate_action_result``: for
every custom action call, Rasa calls ``jsonschema.validate()``, which checks the
response schema itself against the JSON Schema meta-schema and builds a new
validator each time (the newest draft, with its slow ``$dynamicRef``
machinery). Our turns run several custom actions (start, form validation,
diagnosis, fix walk), so this dominated our reply time.

``install()`` replaces that method with one that does what
``jsonschema.validate()`` does (the validator class it would pick for
``RemoteAction.action_response_format_spec()``, the best-matching error) with
one validator built and checked once: the same responses pass, the same
malformed ones raise the same ``ValidationError`` with Rasa's hint appended. Called when
our channels are loaded (bot_server/channels.py); tests check both outcomes.
"""

from __future__ import annotations

import functools
from typing import Any, Dict

from jsonschema.exceptions import best_match
from jsonschema.validators import validator_for
from rasa.core.actions.action import RemoteAction
from rasa.shared.constants import DOCS_BASE_URL

_installed = False


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


def install() -> None:
    """Swap the method in once per process."""
    global _installed
    if not _installed:
        setattr(RemoteAction, "_validate_action_result", validate_action_result)  # noqa: B010
        _installed = True
