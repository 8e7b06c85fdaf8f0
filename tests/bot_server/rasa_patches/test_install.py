"""install() (bot_server/rasa_patches): the Rasa version check, and who calls it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest
import yaml
from rasa.core.actions.action import RemoteAction
from rasa.core.run import _create_single_channel
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import Event
from rasa.utils.endpoints import EndpointConfig

from bot_server import rasa_patches
from bot_server.rasa_patches import speedups
from bot_server.rasa_patches.lock_store import AtomicRedisLockStore
from bot_server.rasa_patches.tracker_store import ResilientSQLTrackerStore

ROOT = Path(__file__).resolve().parents[3]


def test_the_version_it_was_written_for_is_the_pinned_one() -> None:
    requirements = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    pinned = re.search(r"^rasa(?:\[[^\]]*\])?==(\S+)", requirements, re.M)
    assert pinned and pinned.group(1) == rasa_patches.RASA_VERSION
    assert rasa_patches.installed_rasa_version() == rasa_patches.RASA_VERSION


def test_another_rasa_version_is_refused_naming_both() -> None:
    with pytest.raises(rasa_patches.UnsupportedRasaVersion) as refused:
        rasa_patches.check_rasa_version("3.6.20")
    assert "Rasa 3.6.21" in str(refused.value)
    assert "Rasa 3.6.20 is installed" in str(refused.value)
    rasa_patches.check_rasa_version(rasa_patches.RASA_VERSION)  # no error


def test_install_under_another_version_refuses_before_patching(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rasa_patches, "installed_rasa_version", lambda: "3.7.0")
    swapped: List[str] = []
    monkeypatch.setattr(speedups, "install", lambda: swapped.append("speedups"))
    with pytest.raises(rasa_patches.UnsupportedRasaVersion, match=r"3\.7\.0"):
        rasa_patches.install()
    assert swapped == []


def our_plugins() -> List[str]:
    """Every class credentials.yml and endpoints.prod.yml name."""
    credentials = yaml.safe_load((ROOT / "credentials.yml").read_text("utf-8"))
    endpoints = yaml.safe_load((ROOT / "endpoints.prod.yml").read_text("utf-8"))
    stores = [
        v["type"] for v in endpoints.values() if isinstance(v, dict) and "type" in v
    ]
    return [*credentials, *stores]


@pytest.mark.parametrize(
    "channel", [name for name in our_plugins() if name.endswith("Input")]
)
def test_each_channel_installs_the_patches_when_rasa_builds_it(
    monkeypatch: pytest.MonkeyPatch, channel: str
) -> None:
    calls: List[str] = []
    monkeypatch.setattr(rasa_patches, "install", lambda: calls.append(channel))
    credentials = yaml.safe_load((ROOT / "credentials.yml").read_text("utf-8"))
    _create_single_channel(channel, credentials[channel])  # what `rasa run` does
    assert calls == [channel]


def test_a_refused_version_stops_rasa_from_building_a_channel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rasa_patches, "installed_rasa_version", lambda: "3.6.20")
    with pytest.raises(rasa_patches.UnsupportedRasaVersion):
        _create_single_channel("bot_server.channels.wechat.wecom.WeComInput", None)


def test_the_stores_install_the_patches_when_rasa_builds_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The stores lean on Rasa internals too: the version check covers them."""
    calls: List[str] = []
    monkeypatch.setattr(rasa_patches, "install", lambda: calls.append("install"))
    ResilientSQLTrackerStore(
        domain=Domain.empty(), dialect="sqlite", db=str(tmp_path / "tracker.db")
    )
    AtomicRedisLockStore(  # redis-py connects on first use, not here
        EndpointConfig(url="127.0.0.1", port=1, db=0, key_prefix="x", type="x")
    )
    assert calls == ["install", "install"]
    stores = {name for name in our_plugins() if not name.endswith("Input")}
    assert stores == {
        f"{ResilientSQLTrackerStore.__module__}.ResilientSQLTrackerStore",
        f"{AtomicRedisLockStore.__module__}.AtomicRedisLockStore",
    }


def test_only_the_wecom_channel_listed_still_installs_the_patches(
    tmp_path: Path,
) -> None:
    """A fresh process, as `rasa run` with a credentials.yml naming WeCom only."""
    credentials = tmp_path / "credentials.yml"
    credentials.write_text("bot_server.channels.wechat.wecom.WeComInput:\n")
    script = (
        "import rasa.core.run as run\n"
        "from rasa.core.actions.action import RemoteAction\n"
        "from rasa.shared.core.events import Event\n"
        f"channels = run.create_http_input_channels(None, {str(credentials)!r})\n"
        "from bot_server.rasa_patches import speedups\n"
        "assert [c.name() for c in channels] == ['wecom'], channels\n"
        "assert RemoteAction._validate_action_result is speedups.validate_action_result\n"
        "assert Event.resolve_by_type is speedups.resolve_event_type\n"
        "print('patched')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("patched")


def test_install_swaps_in_the_speedups() -> None:
    rasa_patches.install()
    assert RemoteAction._validate_action_result is speedups.validate_action_result
    assert Event.resolve_by_type is speedups.resolve_event_type
