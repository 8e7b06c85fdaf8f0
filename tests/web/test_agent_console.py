"""The agent console's files (web/static/agent/): served at /agent/ like the chat page.

Same rules as the chat page: strict headers, nothing loaded from elsewhere, no
inline script or style, and no way for text to become HTML. Its behaviour in a
real browser is tested in tests/e2e/test_agent_desk.py.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import AsyncIterator, Dict, List, Optional, Tuple

import pytest
from aiohttp.test_utils import TestClient, TestServer

from web.server import PageSettings, create_app

ROOT = Path(__file__).resolve().parents[2]
CONSOLE = ROOT / "web" / "static" / "agent"
FILES = [
    CONSOLE / "index.html",
    CONSOLE / "agent.js",
    CONSOLE / "agent.css",
    CONSOLE / "base.css",
]


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    test_client = TestClient(TestServer(create_app(PageSettings())))
    await test_client.start_server()
    yield test_client
    await test_client.close()


async def test_the_console_is_served_at_agent(client: TestClient) -> None:
    page = await client.get("/agent/")
    assert page.status == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "人工客服工作台" in await page.text()
    for path, content_type in [
        ("/agent/agent.js", "text/javascript; charset=utf-8"),
        ("/agent/agent.css", "text/css; charset=utf-8"),
        ("/agent/base.css", "text/css; charset=utf-8"),
        ("/agent/index.html", "text/html; charset=utf-8"),
    ]:
        response = await client.get(path)
        assert response.status == 200, path
        assert response.headers["Content-Type"] == content_type
        assert "script-src 'self';" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Frame-Options"] == "DENY"


async def test_agent_without_slash_goes_to_the_console(client: TestClient) -> None:
    response = await client.get("/agent", allow_redirects=False)
    assert response.status == 302
    assert response.headers["Location"] == "/agent/"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    "path", ["/agent/nothing.js", "/agent/../../server.py", "/vendor/", "/agent/.x.js"]
)
async def test_nothing_else_is_served_under_agent(
    client: TestClient, path: str
) -> None:
    assert (await client.get(path)).status == 404


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_console_files_load_nothing_from_elsewhere(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I)
    assert "@import" not in text and "@font-face" not in text


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: List[Tuple[str, Dict[str, Optional[str]]]] = []
        self.script_text = ""
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: List[Tuple[str, Optional[str]]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.script_text += data.strip()


def test_console_has_no_inline_script_style_or_handler() -> None:
    parser = _Tags()
    parser.feed((CONSOLE / "index.html").read_text(encoding="utf-8"))
    scripts = [attrs for tag, attrs in parser.tags if tag == "script"]
    assert [attrs.get("src") for attrs in scripts] == ["agent.js"]
    assert parser.script_text == ""
    assert not [tag for tag, _ in parser.tags if tag == "style"]
    for tag, attrs in parser.tags:
        assert "style" not in attrs, tag
        assert not [name for name in attrs if name.startswith("on")], tag


def test_console_never_parses_text_as_html() -> None:
    script = (CONSOLE / "agent.js").read_text(encoding="utf-8")
    for sink in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        "createContextualFragment",
        "DOMParser",
    ]:
        assert sink not in script


def test_console_talks_only_to_the_desk_api() -> None:
    script = (CONSOLE / "agent.js").read_text(encoding="utf-8")
    assert 'const API = "api/";' in script  # relative: /agent/api/ of this server
    assert re.findall(r"fetch\(([^,]+),", script) == ["API + path"]
    assert re.findall(r"new EventSource\(\s*(\w+) \+", script) == ["API"]
