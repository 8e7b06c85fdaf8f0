"""`python -m desk add-agent` / `list-agents` (make agent-add)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator, List

import pytest

from desk.__main__ import main
from desk.store import DEMO_PASSWORD, DeskStore


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'accounts.db'}"
    monkeypatch.setenv("ACCOUNT_DB_URL", url)
    monkeypatch.delenv("CASE_DB_URL", raising=False)
    monkeypatch.delenv("DESK_AGENT_PASSWORD", raising=False)
    monkeypatch.delenv("BOT_PROFILE", raising=False)
    return url


def typed(*answers: str) -> Callable[[str], str]:
    """A prompt that answers in turn; EOF when out of answers."""
    queue: Iterator[str] = iter(answers)
    asked: List[str] = []

    def prompt(question: str) -> str:
        asked.append(question)
        try:
            return next(queue)
        except StopIteration:
            raise EOFError from None

    return prompt


def test_add_an_agent_with_the_password_typed_twice(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    prompt = typed("a-good-password", "a-good-password")
    args = ["add-agent", "lily", "--display-name", "小丽", "--role", "supervisor"]
    assert main(args, prompt) == 0
    assert "added agent lily (小丽, supervisor)" in capsys.readouterr().out
    store = DeskStore(db)
    assert store.verify("lily", "a-good-password") is not None
    assert main(["list-agents"]) == 0
    assert capsys.readouterr().out.splitlines() == ["lily\t小丽\tsupervisor"]


def test_the_password_from_the_environment_and_changing_an_agent(
    db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    DeskStore(db).ensure_demo_agents()
    monkeypatch.setenv("DESK_AGENT_PASSWORD", "a-real-password")
    assert (
        main(
            ["add-agent", "agent1", "--display-name", "小安", "--role", "supervisor"],
            typed(),
        )
        == 0
    )
    assert "updated agent agent1" in capsys.readouterr().out
    assert DeskStore(db).demo_password_agents() == ["agent2"]


@pytest.mark.parametrize(
    "args, answers, why",
    [
        (["add-agent", "lily"], ("short", "short"), "at least 10"),
        (["add-agent", "lily"], ("a-good-password", "another-password"), "differ"),
        (["add-agent", "lily"], (), "DESK_AGENT_PASSWORD"),
        (["add-agent", "Lily Smith"], ("a-good-password",) * 2, "username"),
    ],
)
def test_bad_input_is_refused_with_a_reason(
    db: str,
    args: List[str],
    answers: tuple[str, ...],
    why: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(args, typed(*answers)) == 2
    assert why in capsys.readouterr().err
    assert DeskStore(db).agents() == []


def test_prod_refuses_the_demo_password(
    db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BOT_PROFILE", "prod")
    assert main(["add-agent", "lily"], typed(DEMO_PASSWORD, DEMO_PASSWORD)) == 2
    assert "demo password" in capsys.readouterr().err


def test_an_unreachable_database_exits_3(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ACCOUNT_DB_URL", "postgresql://postgres@127.0.0.1:1/none")
    assert main(["list-agents"]) == 3
    assert "unreachable" in capsys.readouterr().err
