"""python -m insights: the commands over the configured stores; the package
stays light (no Rasa), its settings follow config.yml."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from insights.__main__ import main
from insights.stats import stats
from settings import InsightsSettings, load
from tests.insights.conftest import DAY, World, cli_env, write_scenario

ROOT = Path(__file__).resolve().parents[2]


async def test_stats_json_is_the_api_figures(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import date

    await write_scenario(world)
    cli_env(world, monkeypatch)
    assert main(["stats", "--from", DAY, "--to", DAY, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    day = date.fromisoformat(DAY)
    assert printed == stats(world.stores, day, day)
    assert main(["stats", "--from", DAY, "--to", DAY, "--channel", "rest"]) == 0
    text = capsys.readouterr().out
    assert "channel rest" in text and "handoff 100.0% (2/2)" in text
    assert main(["stats", "--from", "2026-11-10", "--to", "2026-11-01"]) == 2
    assert "must not be after" in capsys.readouterr().err


async def test_review_commands(
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    await write_scenario(world)
    cli_env(world, monkeypatch)
    assert main(["review-queue", "--json", "--days", "36500"]) == 0  # any clock
    items = json.loads(capsys.readouterr().out)["items"]
    assert len(items) == 4
    quota = next(item for item in items if item["text"] == "借呗额度咋整")
    assert (
        main(["review-label", quota["id"], "jiebei_quota", "--reviewer", "agent1"]) == 0
    )
    assert json.loads(capsys.readouterr().out)["label"] == "jiebei_quota"
    assert main(["review-label", quota["id"], "nonsense"]) == 2
    assert main(["review-label", "f" * 32, "deny"]) == 1
    assert main(["review-queue", "--days", "36500"]) == 0
    queue = capsys.readouterr().out
    assert "借呗额度咋整" not in queue and "没做成" in queue
    assert main(["review-queue", "--days", "0"]) == 2
    out = tmp_path / "reviewed.yml"
    assert main(["review-export", "--out", str(out)]) == 0
    assert "1 reviewed messages written" in capsys.readouterr().out
    assert "借呗额度咋整" in out.read_text(encoding="utf-8")


def test_an_unreachable_store_is_exit_3(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRACKER_DB_HOST", "127.0.0.1")
    monkeypatch.setenv("TRACKER_DB_PORT", "1")
    monkeypatch.setenv("CASE_DB_URL", "postgresql://postgres@127.0.0.1:1/none")
    assert main(["stats"]) == 3
    assert "store unavailable" in capsys.readouterr().err


def test_bad_settings_are_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REVIEW_CONFIDENCE_BELOW", "1.5")
    assert main(["review-queue"]) == 2
    assert "REVIEW_CONFIDENCE_BELOW" in capsys.readouterr().err


def test_the_review_threshold_defaults_to_the_fallback_threshold() -> None:
    config = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
    fallback = next(c for c in config["pipeline"] if c["name"] == "FallbackClassifier")
    assert load(InsightsSettings, {}).review_confidence_below == fallback["threshold"]


def test_the_tracker_store_is_the_one_the_endpoints_name() -> None:
    embedded = load(InsightsSettings, {})
    assert embedded.tracker_store_url == f"sqlite:///{ROOT / '.rasa' / 'tracker.db'}"
    prod = load(
        InsightsSettings,
        {
            "TRACKER_DB_HOST": "db.internal",
            "TRACKER_DB_NAME": "jiebei_tracker",
            "TRACKER_DB_USER": "jiebei",
            "TRACKER_DB_PASSWORD": "p@ss/word:" + "x" * 20,
            "ACCOUNT_DB_URL": "postgresql://a@db/accounts",
        },
    )
    assert prod.tracker_store_url == (
        "postgresql://jiebei:p%40ss%2Fword%3A"
        + "x" * 20
        + "@db.internal:5432/jiebei_tracker"
    )
    assert prod.case_store_url == "postgresql://a@db/accounts"
    endpoints = yaml.safe_load(
        (ROOT / "endpoints.prod.yml").read_text(encoding="utf-8")
    )
    store = endpoints["tracker_store"]
    assert (store["url"], store["db"], store["username"], store["password"]) == (
        "${TRACKER_DB_HOST}",
        "${TRACKER_DB_NAME}",
        "${TRACKER_DB_USER}",
        "${TRACKER_DB_PASSWORD}",
    )
    embedded_endpoints = yaml.safe_load(
        (ROOT / "endpoints.yml").read_text(encoding="utf-8")
    )
    assert embedded_endpoints["tracker_store"]["db"] == "${TRACKER_DB_PATH}"


def test_insights_imports_no_rasa() -> None:
    """The page server serves insights: it must stay light."""
    code = (
        "import sys, insights.__main__, insights.stats, insights.review, "
        "insights.retention\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'rasa', 'rasa_sdk', 'tensorflow', 'sanic', 'spacy'})\n"
        "print(','.join(heavy))"
    )
    found = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert found.stdout.strip() == ""
