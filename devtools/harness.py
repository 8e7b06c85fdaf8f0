"""Run the real bot (Rasa server + action server) on free local ports and chat with it.

Used by the end-to-end tests (`make e2e`) and by the scripts that run the bot
(`scripts/record_stories.py`, `scripts/bench_e2e.py`, `scripts/security_report.py`).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

from devtools.project import ROOT
from devtools.servers import Postgres, Redis, free_port

MODEL = ROOT / "models" / "jiebei.tar.gz"
RASA = Path(sys.executable).with_name("rasa")
STARTUP_TIMEOUT_S = 240
# What each Sanic worker of a Rasa server logs once it has loaded the model
# (rasa.core.run.load_agent_on_start).
WORKER_UP = "Rasa server is up and running"


def http(
    method: str,
    url: str,
    body: Optional[Any] = None,
    timeout: float = 30,
    headers: Optional[Dict[str, str]] = None,
) -> Any:
    """One JSON request; the decoded JSON answer (an HTTP error raises)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"null")


def wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Return once ``url`` answers; raise with the log's tail if it exits or is late."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early, log:\n{log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(1)
    raise RuntimeError(
        f"{url} not up after {STARTUP_TIMEOUT_S}s, log:\n{log.read_text()[-3000:]}"
    )


@dataclass
class Bot:
    """A running bot: send messages, read trackers."""

    rasa_url: str
    action_url: str
    env: Dict[str, str]

    def api(self, path: str) -> str:
        """A URL of Rasa's HTTP API, with the token when the server needs one."""
        token = self.env.get("RASA_AUTH_TOKEN", "")
        return f"{self.rasa_url}{path}" + (f"?token={token}" if token else "")

    def say(self, sender: str, text: str) -> List[Dict[str, Any]]:
        """Send ``text`` as ``sender`` over REST; the bot's replies."""
        return list(
            http(
                "POST",
                f"{self.rasa_url}/webhooks/rest/webhook",
                {"sender": sender, "message": text},
            )
        )

    def tracker(self, sender: str) -> Dict[str, Any]:
        """The conversation's tracker, as Rasa's HTTP API returns it."""
        result: Dict[str, Any] = http(
            "GET", self.api(f"/conversations/{sender}/tracker")
        )
        return result

    def action_calls(self) -> int:
        """How many actions the action server has run since it started."""
        return action_calls(self.action_url, self.env)

    def reset(self, sender: str) -> None:
        """Start this conversation afresh (a restart event through the API)."""
        http(
            "POST",
            self.api(f"/conversations/{sender}/tracker/events"),
            {"event": "restart"},
        )

    def replies_to(self, sender: str, text: str) -> List[str]:
        """Send ``text``; the names of the responses the bot sent to it."""
        before = len(self.utterances(sender))
        self.say(sender, text)
        return self.utterances(sender)[before:]

    def utterances(self, sender: str) -> List[str]:
        """Names of the responses the bot sent since the last restart, in order."""
        events = self.tracker(sender)["events"]
        restarts = [i for i, e in enumerate(events) if e.get("event") == "restart"]
        since = events[restarts[-1] + 1 :] if restarts else events
        return [
            str((e.get("metadata") or {}).get("utter_action"))
            for e in since
            if e.get("event") == "bot"
        ]


def action_calls(action_url: str, env: Dict[str, str]) -> int:
    """The action server's count of actions run (GET /calls, actions/server.py)."""
    token = env.get("ACTION_SERVER_TOKEN", "")
    headers = {"X-Action-Token": token} if token else {}
    return int(http("GET", f"{action_url}/calls", headers=headers)["total"])


def _start(
    command: List[str], env: Dict[str, str], log: Path
) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT
    )


def start_actions(env: Dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    """The action server on ``port``; returns once /health answers."""
    process = _start(
        [sys.executable, "-m", "actions.server", "--port", str(port)], env, log
    )
    wait_until_up(f"http://127.0.0.1:{port}/health", process, log)
    return process


def wait_for_workers(
    workers: int, process: subprocess.Popen[bytes], log: Path, offset: int = 0
) -> None:
    """Return once ``workers`` Sanic workers have loaded the model.

    Read from the log (after ``offset``): the first worker answers /status
    before the others are ready.
    """
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        text = log.read_bytes()[offset:].decode("utf-8", "replace")
        if text.count(WORKER_UP) >= workers:
            return
        if process.poll() is not None:
            raise RuntimeError(f"server exited early, log:\n{text[-3000:]}")
        time.sleep(0.5)
    raise RuntimeError(f"{workers} workers not up after {STARTUP_TIMEOUT_S}s ({log})")


def start_rasa(
    env: Dict[str, str], port: int, log: Path, endpoints: str = "endpoints.yml"
) -> subprocess.Popen[bytes]:
    """A Rasa server with the trained model on ``port``; returns once it is up.

    With ``RASA_AUTH_TOKEN`` in ``env`` the HTTP API needs that token, as in
    ``make serve PROFILE=prod``; with ``SANIC_WORKERS`` above 1, once every
    worker has loaded the model.
    """
    if not MODEL.exists():
        raise RuntimeError(f"no trained model at {MODEL}: run `make train` first")
    token = env.get("RASA_AUTH_TOKEN", "")
    offset = log.stat().st_size if log.exists() else 0
    process = _start(
        [str(RASA), "run", "--enable-api", "-i", "127.0.0.1", "-p", str(port),
         "--model", str(MODEL), "--endpoints", endpoints,
         "--credentials", "credentials.yml",
         *(["--auth-token", token] if token else [])],
        env, log,
    )  # fmt: skip
    query = f"?token={token}" if token else ""
    wait_until_up(f"http://127.0.0.1:{port}/status{query}", process, log)
    workers = int(env.get("SANIC_WORKERS") or 1)
    if workers > 1:
        wait_for_workers(workers, process, log, offset)
    return process


def start_page_server(
    env: Dict[str, str], port: int, log: Path, rasa_url: str
) -> subprocess.Popen[bytes]:
    """The page server (chat page and agent desk, web/server.py) on ``port``.

    It reads the stores ``env`` names (case store, tracker store) and puts the
    agents' words into conversations through the Rasa at ``rasa_url`` (with
    ``RASA_AUTH_TOKEN`` when ``env`` has one). Returns once it answers.
    """
    process = _start(
        [sys.executable, "-m", "web.server", "--port", str(port)],
        {**env, "RASA_PUBLIC_URL": rasa_url},
        log,
    )
    wait_until_up(f"http://127.0.0.1:{port}/config.json", process, log)
    return process


def stop(process: Optional[subprocess.Popen[bytes]]) -> None:
    """Terminate a server and wait for it (kill after 20 s)."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def seed_accounts(env: Dict[str, str]) -> None:
    """Load the fixture accounts into the account store ``env`` names."""
    subprocess.run(
        [sys.executable, "-m", "actions.services.accounts", "seed"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )


def base_env(workdir: Path, action_port: int) -> Dict[str, str]:
    """The embedded profile in ``workdir``: its own SQLite account and tracker files."""
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "ACCOUNT_DB_URL": f"sqlite:///{workdir / 'accounts.db'}",
        "TRACKER_DB_PATH": str(workdir / "tracker.db"),
        "ACTION_ENDPOINT_URL": f"http://127.0.0.1:{action_port}/webhook",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        # Rasa and the action server share a secret (actions/server.py).
        "ACTION_SERVER_TOKEN": secrets.token_hex(24),
        # Scripted conversations are faster than people: the default per-sender
        # limit (20/minute) is tested on its own (tests/e2e/test_bad_input.py).
        "RATE_LIMIT": "600/minute",
    }


def prod_env(
    workdir: Path,
    action_port: int,
    postgres: Postgres,
    redis: Redis,
    tracker_db: str,
    accounts_db: str,
    key_prefix: str,
) -> Dict[str, str]:
    """The production profile (endpoints.prod.yml) on these servers.

    Account lookups use ``ACCOUNT_IDENTITY=sender`` (fixture ids as conversation
    ids), as the production-profile tests and the benchmark talk over REST.
    """
    return {
        **base_env(workdir, action_port),
        "BOT_PROFILE": "prod",
        "ACCOUNT_IDENTITY": "sender",
        "ACCOUNT_DB_URL": postgres.url(accounts_db),
        "TRACKER_DB_HOST": postgres.host,
        "TRACKER_DB_PORT": str(postgres.port),
        "TRACKER_DB_NAME": tracker_db,
        "TRACKER_DB_USER": postgres.user,
        "TRACKER_DB_PASSWORD": "",
        "LOCK_REDIS_HOST": redis.host,
        "LOCK_REDIS_PORT": str(redis.port),
        "LOCK_REDIS_DB": "0",
        "LOCK_KEY_PREFIX": key_prefix,
        # As `make serve PROFILE=prod`: API token, rate counts and the
        # channels' memory in Redis.
        "RASA_AUTH_TOKEN": secrets.token_hex(20),
        "RATE_LIMIT_STORAGE_URL": f"redis://{redis.host}:{redis.port}/0",
        "CHANNEL_STATE_URL": f"redis://{redis.host}:{redis.port}/0",
    }


@contextmanager
def running_bot(
    workdir: Path, extra_env: Optional[Dict[str, str]] = None
) -> Iterator[Bot]:
    """Start both servers against a fresh SQLite store seeded with the fixtures."""
    rasa_port, action_port = free_port(), free_port()
    env = {**base_env(workdir, action_port), **(extra_env or {})}
    seed_accounts(env)
    actions: Optional[subprocess.Popen[bytes]] = None
    rasa: Optional[subprocess.Popen[bytes]] = None
    try:
        actions = start_actions(env, action_port, workdir / "actions.log")
        rasa = start_rasa(env, rasa_port, workdir / "rasa.log")
        yield Bot(
            f"http://127.0.0.1:{rasa_port}", f"http://127.0.0.1:{action_port}", env
        )
    finally:
        stop(rasa)
        stop(actions)
