"""The engine is pure Python, and the support-staff CLI behaves."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

from devtools.project import ROOT

ENGINE = ROOT / "actions" / "diagnosis"


def run_cli(
    *args: str, stdin: str = "", env_db: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if env_db:
        env["ACCOUNT_DB_URL"] = env_db
    return subprocess.run(
        [sys.executable, "-m", "actions.diagnosis", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )


def test_engine_modules_import_no_rasa_or_network() -> None:
    forbidden = ("rasa", "rasa_sdk", "sqlalchemy", "requests", "aiohttp", "socket")
    for path in ENGINE.glob("*.py"):
        if path.name == "__main__.py":
            continue  # the CLI may reach the account store
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: List[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in forbidden, (
                    f"{path.name} imports {name}"
                )


def test_importing_the_engine_loads_no_rasa_sdk() -> None:
    code = (
        "import sys, actions.diagnosis.engine, actions.diagnosis.walk,"
        " actions.diagnosis.answers, actions.diagnosis.questions;"
        "print(any(m.split('.')[0] in ('rasa_sdk', 'rasa') for m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    assert result.stdout.strip() == "False", result.stderr


def test_cli_with_a_facts_file(tmp_path: Path) -> None:
    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps({"account_status": "frozen", "sesame_score": 560}))
    result = run_cli("--facts", str(facts))
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert [c["code"] for c in output["causes"]] == [
        "account_frozen",
        "low_sesame_score",
    ]
    assert output["causes"][0]["user_fixable"] is True


def test_cli_reads_stdin() -> None:
    result = run_cli("--facts", "-", stdin='{"bank_cards": 0}')
    assert result.returncode == 0
    assert [c["code"] for c in json.loads(result.stdout)["causes"]] == ["no_bank_card"]


@pytest.mark.parametrize(
    ("stdin", "words"),
    [
        ('{"sesame_score": 2000}', "sesame_score: must be at most 950"),
        ('{"colour": "red"}', "colour: unknown field"),
        ("[1", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ("", "not valid JSON"),
    ],
)
def test_cli_bad_input_is_one_line_without_traceback(stdin: str, words: str) -> None:
    result = run_cli("--facts", "-", stdin=stdin)
    assert result.returncode == 2
    assert words in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_missing_file_and_arguments() -> None:
    missing = run_cli("--facts", "/nonexistent/facts.json")
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    neither = run_cli()
    assert neither.returncode == 2 and "Traceback" not in neither.stderr


def test_cli_looks_accounts_up(seeded_db_url: str) -> None:
    result = run_cli("--account", "demo_multi_credit", env_db=seeded_db_url)
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert output["account"] == "demo_multi_credit"
    assert output["causes"][0]["code"] == "poor_credit_record"
    unknown = run_cli("--account", "nobody", env_db=seeded_db_url)
    assert unknown.returncode == 2 and "no account 'nobody'" in unknown.stderr


def test_cli_reports_an_unreachable_store() -> None:
    result = run_cli(
        "--account", "demo_healthy", env_db="postgresql://127.0.0.1:1/none"
    )
    assert result.returncode == 3
    assert "account store unavailable" in result.stderr
    assert "Traceback" not in result.stderr
