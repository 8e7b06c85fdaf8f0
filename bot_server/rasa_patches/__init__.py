"""Our changes to Rasa's own classes, written for one Rasa version.

- ``speedups``: two measured hot spots of Rasa's server, swapped in by
  :func:`install`;
- ``handoff_session``: a conversation paused by a handoff stays paused in a
  new session (swapped in by :func:`install`);
- ``tracker_store``: the SQL tracker store that survives a database restart
  (endpoints.prod.yml names it);
- ``lock_store``: the Redis lock store with atomic ticket changes
  (endpoints.prod.yml names it).

All of them lean on Rasa internals, so :func:`install` refuses to run under
another Rasa than :data:`RASA_VERSION`. Rasa has no start-up hook for a
project's code, so every plug-in of ours it loads calls :func:`install` when
Rasa builds it (each channel's ``from_credentials``, each store's
constructor): whichever subset of them a deployment lists, the patches are in
and the version checked before the server takes a message.
"""

from __future__ import annotations

import importlib.metadata

from settings import rasa_server_settings

# The Rasa release these patches were written and tested for (requirements.txt
# pins it; a test keeps the two equal).
RASA_VERSION = "3.6.21"


class UnsupportedRasaVersion(RuntimeError):
    """The installed Rasa is not the one the patches were written for."""


def installed_rasa_version() -> str:
    """The version of the installed ``rasa`` distribution."""
    return importlib.metadata.version("rasa")


def check_rasa_version(installed: str) -> None:
    """Raise UnsupportedRasaVersion unless ``installed`` is :data:`RASA_VERSION`."""
    if installed != RASA_VERSION:
        raise UnsupportedRasaVersion(
            f"bot_server.rasa_patches was written for Rasa {RASA_VERSION}, but "
            f"Rasa {installed} is installed: check each patch against Rasa "
            f"{installed} (tests/bot_server/rasa_patches), then update RASA_VERSION"
        )


def install() -> None:
    """Check the Rasa version, then swap the speedups in (once per process).

    Also reads the Rasa server's settings: called while Rasa builds its channels
    and stores, so an unusable variable stops the server at start-up, named.
    """
    check_rasa_version(installed_rasa_version())
    rasa_server_settings()
    # Imported after the check: under another Rasa the import itself may fail,
    # with a less helpful message than the check's.
    from bot_server.rasa_patches import handoff_session, speedups

    speedups.install()
    handoff_session.install()
