"""Agent accounts of the desk, from the command line (``make agent-add``).

    python -m desk add-agent NAME [--display-name 小安] [--role agent|supervisor]
    python -m desk list-agents

``add-agent`` creates the agent, or gives an existing one the new name, role
and password. The password comes from DESK_AGENT_PASSWORD (settings/) or,
unset, from a prompt asked twice; it needs at least 10 characters, and the
production profile refuses the demo password. The database is the page
server's case store (CASE_DB_URL or ACCOUNT_DB_URL).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Callable, List, Optional, Sequence

from actions.services.sql import StoreUnavailable, ensure_database
from desk.store import ROLES, BadAgent, DeskStore, check_password, check_username
from settings import PageServerSettings, SettingsError, page_server_settings

Prompt = Callable[[str], str]
TIMEOUT_S = 5.0


def ask_password(prompt: Prompt) -> str:
    """The password typed twice (the same both times), or BadAgent."""
    first = prompt("新密码 / new password: ")
    second = prompt("再输入一次 / again: ")
    if first != second:
        raise BadAgent("the two passwords differ")
    return first


def add_agent(
    settings: PageServerSettings,
    username: str,
    display_name: Optional[str],
    role: str,
    prompt: Prompt = getpass.getpass,
) -> str:
    """Create or update the agent; the line to print."""
    check_username(username)
    password = settings.desk_agent_password
    if password is None:
        try:
            password = ask_password(prompt)
        except EOFError:
            raise BadAgent(
                "no password: set DESK_AGENT_PASSWORD or run it in a terminal"
            ) from None
    check_password(password, settings.profile)
    # A fresh PostgreSQL server may not have the database yet.
    ensure_database(settings.case_store_url, TIMEOUT_S)
    store = DeskStore(settings.case_store_url, TIMEOUT_S)
    existed = store.agent(username) is not None
    agent = store.add_agent(
        username, display_name or username, role, password, settings.profile
    )
    verb = "updated" if existed else "added"
    return f"{verb} agent {agent.username} ({agent.display_name}, {agent.role})"


def list_agents(settings: PageServerSettings) -> List[str]:
    """One line per agent."""
    store = DeskStore(settings.case_store_url, TIMEOUT_S)
    return [
        f"{agent.username}\t{agent.display_name}\t{agent.role}"
        for agent in store.agents()
    ]


def main(argv: Optional[Sequence[str]] = None, prompt: Prompt = getpass.getpass) -> int:
    """Run one command; 2 for bad input, 3 when the database is unreachable."""
    parser = argparse.ArgumentParser(prog="python -m desk")
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add-agent", help="add an agent or change one")
    add.add_argument("name", help="username: lower-case letters, digits, . _ -")
    add.add_argument("--display-name", help="the name users see (default: NAME)")
    add.add_argument("--role", choices=ROLES, default="agent")
    commands.add_parser("list-agents", help="every agent")
    args = parser.parse_args(argv)
    try:
        settings = page_server_settings()
        if args.command == "add-agent":
            print(add_agent(settings, args.name, args.display_name, args.role, prompt))
        else:
            for line in list_agents(settings):
                print(line)
    except (BadAgent, SettingsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except StoreUnavailable as error:
        print(f"error: the case store is unreachable: {error}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
