"""Typed settings of the three processes, read once from the environment.

Each process has frozen settings objects (``processes.py``): the Rasa server
(channels, reply pipeline, messaging platforms), the custom actions (account
and case stores, identity), the action server's listener and the page server.
Every field names its environment variable, type, default and meaning in one
declaration
(``core.setting``); a value that cannot be used stops the process at start-up
with the variable named (``SettingsError``). An unset or empty variable takes
the default.

The deployment checks (tests/deploy) read these declarations to know which
variables each server reads; docs/profiles.md lists them.
"""

from settings.core import SettingsError, Variable, load, variables
from settings.processes import (
    ActionServerSettings,
    ActionSettings,
    InsightsSettings,
    PageServerSettings,
    RasaServerSettings,
    StoreSettings,
    action_server_settings,
    action_settings,
    insights_settings,
    page_server_settings,
    rasa_server_settings,
)

__all__ = [
    "ActionServerSettings",
    "ActionSettings",
    "InsightsSettings",
    "PageServerSettings",
    "RasaServerSettings",
    "SettingsError",
    "StoreSettings",
    "Variable",
    "action_server_settings",
    "action_settings",
    "insights_settings",
    "load",
    "page_server_settings",
    "rasa_server_settings",
    "variables",
]
