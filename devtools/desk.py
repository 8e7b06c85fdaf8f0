"""An agent of the desk over HTTP, as a script or a test talks to it.

One `DeskAgent` is one signed-in agent on one page server: its own cookie jar
(the ``jiebei_desk`` session cookie) and the CSRF token the sign-in returned,
sent with every change. Answers come back as `Answer` (status and JSON body),
errors included: a test asserts the status, never catches an exception.

    agent = DeskAgent("http://127.0.0.1:8080")
    agent.login("agent1", "demo-password")
    waiting = agent.cases("waiting")
"""

from __future__ import annotations

import http.cookiejar
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

API = "/agent/api/"


@dataclass(frozen=True)
class Answer:
    """One answer of the desk API."""

    status: int
    body: Any

    @property
    def ok(self) -> bool:
        """A 2xx answer."""
        return 200 <= self.status < 300

    def error(self) -> str:
        """The error message of a 4xx/5xx JSON answer ('' if there is none)."""
        return str(self.body.get("error", "")) if isinstance(self.body, dict) else ""


class DeskAgent:
    """One agent's session on one page server."""

    def __init__(self, base_url: str, timeout_s: float = 30) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.cookies = http.cookiejar.CookieJar()
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.cookies)
        )
        self.csrf_token: Optional[str] = None
        self.username: Optional[str] = None

    def request(
        self,
        method: str,
        path: str,
        body: Optional[Any] = None,
        headers: Optional[Dict[str, str]] = None,
    ) -> Answer:
        """``method`` on ``/agent/api/<path>``; changes carry the CSRF token."""
        sent = {"Accept": "application/json", **(headers or {})}
        data = None
        if method != "GET":
            sent["Content-Type"] = "application/json"
            data = json.dumps(body if body is not None else {}).encode()
            if self.csrf_token and "X-CSRF-Token" not in sent:
                sent["X-CSRF-Token"] = self.csrf_token
        request = urllib.request.Request(
            self.base_url + API + path, data=data, method=method, headers=sent
        )
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:
                return Answer(response.status, _json(response.read()))
        except urllib.error.HTTPError as error:
            return Answer(error.code, _json(error.read()))

    def login(self, username: str, password: str) -> Answer:
        """Sign in; keeps the session cookie and the CSRF token."""
        answer = self.request(
            "POST", "login", {"username": username, "password": password}
        )
        if answer.ok:
            self.csrf_token = answer.body["csrf_token"]
            self.username = username
        return answer

    def cases(self, status: str) -> List[Dict[str, Any]]:
        """The cases of the queue (``waiting``), active or resolved; [] on an error."""
        answer = self.request("GET", f"cases?status={status}")
        return list(answer.body.get("cases", [])) if answer.ok else []

    def case(self, case_id: str) -> Answer:
        """A case with its summary and transcript."""
        return self.request("GET", f"cases/{case_id}")

    def act(self, case_id: str, action: str, body: Optional[Any] = None) -> Answer:
        """claim, unclaim, transfer, messages or resolve on a case."""
        return self.request("POST", f"cases/{case_id}/{action}", body)

    def wait_for_case(
        self, conversation_id: str, status: str = "waiting", timeout_s: float = 30
    ) -> Dict[str, Any]:
        """The conversation's case once it is listed with ``status``."""
        deadline = time.monotonic() + timeout_s
        while True:
            for row in self.cases(status):
                if row.get("conversation_id") == conversation_id:
                    return row
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no {status} case of {conversation_id} after {timeout_s}s"
                )
            time.sleep(0.2)


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return {"error": raw.decode("utf-8", "replace")[:200]}
