"""The chat page server (web/server.py): config per profile, strict headers, only web/static/."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable, Dict, List, Optional, Tuple

import jwt
import pytest
from aiohttp.test_utils import TestClient, TestServer

from actions import identity
from actions.services.accounts import fixture_labels
from web import server
from web.server import PageSettings, create_app

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s" * 40
DEMO = PageSettings(demo_accounts=fixture_labels())
PROD = PageSettings(profile="prod", demo_accounts=fixture_labels())

Client = Callable[[PageSettings], Awaitable[TestClient]]


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    started: List[TestClient] = []

    async def make(settings: PageSettings) -> TestClient:
        test_client = TestClient(TestServer(create_app(settings)))
        await test_client.start_server()
        started.append(test_client)
        return test_client

    yield make
    for test_client in started:
        await test_client.close()


async def test_demo_config_lists_the_fixture_accounts(client: Client) -> None:
    response = await (await client(DEMO)).get("/config.json")
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"
    config = await response.json()
    assert config["rasa_url"] == "http://127.0.0.1:5005"
    assert config["socketio_path"] == "/socket.io"
    assert config["profile"] == "demo"
    accounts = {a["id"]: a["description"] for a in config["demo_accounts"]}
    assert accounts == dict(fixture_labels())
    assert "demo_account_frozen" in accounts
    assert "identity_token" not in config


async def test_prod_config_has_no_demo_accounts_and_no_token(client: Client) -> None:
    config = await (
        await (await client(PROD)).get("/config.json?as=demo_healthy")
    ).json()
    assert config == {
        "rasa_url": "http://127.0.0.1:5005",
        "socketio_path": "/socket.io",
        "profile": "prod",
    }


async def test_demo_login_mints_a_token_for_a_fixture_account(client: Client) -> None:
    settings = PageSettings(
        profile="prod", demo_login_secret=SECRET, demo_accounts=fixture_labels()
    )
    test_client = await client(settings)
    config = await (await test_client.get("/config.json?as=demo_account_frozen")).json()
    assert identity.verify(config["identity_token"], SECRET) == "demo_account_frozen"
    claims = jwt.decode(config["identity_token"], SECRET, algorithms=["HS256"])
    assert claims["exp"] > claims["iat"]
    assert config["demo_login"] == "demo_account_frozen"
    assert "demo_accounts" not in config
    # no ?as: an anonymous page
    assert "identity_token" not in await (await test_client.get("/config.json")).json()


@pytest.mark.parametrize("login_as", ["not_a_fixture", "demo_account_frozen'--", ""])
async def test_demo_login_refuses_other_accounts(client: Client, login_as: str) -> None:
    settings = PageSettings(demo_login_secret=SECRET, demo_accounts={"demo_x": "x"})
    response = await (await client(settings)).get(
        "/config.json", params={"as": login_as}
    )
    assert response.status == 400
    assert "identity_token" not in await response.text()


def test_settings_from_env() -> None:
    settings = PageSettings.from_env({"RASA_PUBLIC_URL": "https://bot.example.com/"})
    assert settings.rasa_url == "https://bot.example.com"
    assert settings.profile == "demo"
    assert settings.demo_login_secret is None
    assert "demo_account_frozen" in settings.demo_accounts
    assert PageSettings.from_env({"BOT_PROFILE": "prod"}).profile == "prod"


def test_demo_login_is_off_by_default_and_needs_a_secret() -> None:
    with_secret = {"IDENTITY_JWT_SECRET": SECRET}
    assert PageSettings.from_env(with_secret).demo_login_secret is None
    on = {**with_secret, "WEB_DEMO_LOGIN": "1"}
    assert PageSettings.from_env(on).demo_login_secret == SECRET
    for secret in ("", "short"):
        with pytest.raises(ValueError, match="IDENTITY_JWT_SECRET"):
            PageSettings.from_env({**on, "IDENTITY_JWT_SECRET": secret})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BOT_PROFILE": "staging"}, "BOT_PROFILE"),
        ({"RASA_PUBLIC_URL": "ftp://x"}, "RASA_PUBLIC_URL"),
        ({"RASA_PUBLIC_URL": "http://x:5005/rasa"}, "origin"),
        ({"WEB_DEMO_LOGIN": "yes"}, "WEB_DEMO_LOGIN"),
    ],
)
def test_bad_settings_name_the_variable(env: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PageSettings.from_env(env)


async def test_the_page_and_its_files(client: Client) -> None:
    test_client = await client(DEMO)
    page = await test_client.get("/")
    assert page.status == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "借呗助手" in await page.text()
    for path, content_type in [
        ("/app.js", "text/javascript; charset=utf-8"),
        ("/style.css", "text/css; charset=utf-8"),
        ("/favicon.svg", "image/svg+xml"),
    ]:
        response = await test_client.get(path)
        assert response.status == 200, path
        assert response.headers["Content-Type"] == content_type


async def test_strict_headers_on_every_response(client: Client) -> None:
    settings = PageSettings(rasa_url="https://bot.example.com:8443")
    test_client = await client(settings)
    for path in ["/", "/config.json", "/app.js", "/nothing-here"]:
        headers = (await test_client.get(path)).headers
        csp = headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp
        assert "script-src 'self';" in csp  # no 'unsafe-inline', no other origin
        assert (
            "connect-src 'self' https://bot.example.com:8443 wss://bot.example.com:8443"
            in csp
        )
        assert "frame-ancestors 'none'" in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.parametrize(
    "path",
    [
        "/nothing-here",
        "/README_SECTION.md",
        "/../server.py",
        "/%2e%2e/server.py",
        "/%2e%2e/__init__.py",
        "/server.py",
        "/../bot_server/pipeline/gate.py",
        "/%2e%2e/credentials.yml",
        "/vendor/%2e%2e/%2e%2e/Makefile",
        "/.hidden.js",
    ],
)
async def test_nothing_else_is_served(client: Client, path: str) -> None:
    response = await (await client(DEMO)).get(path)
    assert response.status == 404


def test_the_server_module_is_outside_the_served_folder() -> None:
    source = Path(server.__file__).resolve()
    assert not source.is_relative_to(server.STATIC_DIR.resolve())
    assert sorted(server.STATIC_DIR.rglob("*.py")) == []


async def test_python_files_are_never_served_even_from_the_served_folder(
    client: Client, tmp_path: Path
) -> None:
    (tmp_path / "page.py").write_text("SECRET = 1\n", encoding="utf-8")
    (tmp_path / "page.js").write_text("let a = 1;\n", encoding="utf-8")
    test_client = await client(PageSettings(static_dir=tmp_path))
    assert (await test_client.get("/page.js")).status == 200
    assert (await test_client.get("/page.py")).status == 404


async def test_no_write_methods(client: Client) -> None:
    response = await (await client(DEMO)).post("/config.json", data=b"{}")
    assert response.status == 405


WEB = ROOT / "web" / "static"
PAGE_FILES = [
    WEB / "index.html",
    WEB / "app.js",
    WEB / "style.css",
    WEB / "favicon.svg",
]


@pytest.mark.parametrize("path", PAGE_FILES, ids=lambda p: p.name)
def test_page_files_load_nothing_from_elsewhere(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    # the SVG namespace is a name, not a download
    text = text.replace('xmlns="http://www.w3.org/2000/svg"', "")
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


def test_page_has_no_inline_script_style_or_handler() -> None:
    parser = _Tags()
    parser.feed((WEB / "index.html").read_text(encoding="utf-8"))
    scripts = [attrs for tag, attrs in parser.tags if tag == "script"]
    assert scripts and all(attrs.get("src") for attrs in scripts)
    assert parser.script_text == ""
    assert not [tag for tag, _ in parser.tags if tag == "style"]
    for tag, attrs in parser.tags:
        assert "style" not in attrs, tag
        assert not [name for name in attrs if name.startswith("on")], tag


def test_widget_never_parses_text_as_html() -> None:
    script = (WEB / "app.js").read_text(encoding="utf-8")
    for sink in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
    ]:
        assert sink not in script


def test_socketio_client_is_pinned_from_the_npm_registry() -> None:
    package = json.loads((ROOT / "package.json").read_text(encoding="utf-8"))
    version = package["dependencies"]["socket.io-client"]
    assert re.fullmatch(r"4\.\d+\.\d+", version), (
        "an exact 4.x pin (engine.io 4 protocol)"
    )
    lock = json.loads((ROOT / "package-lock.json").read_text(encoding="utf-8"))
    packages = {k: v for k, v in lock["packages"].items() if k}
    assert packages["node_modules/socket.io-client"]["version"] == version
    for name, entry in packages.items():
        assert entry["resolved"].startswith("https://registry.npmjs.org/"), name
        assert entry["integrity"].startswith("sha512-"), name


def test_vendored_copy_is_gitignored() -> None:
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").split()
    assert "web/static/vendor/" in ignored and "node_modules/" in ignored
    assert server.VENDORED_CLIENT.as_posix() == "vendor/socket.io.min.js"
