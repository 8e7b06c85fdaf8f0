"""The chat page in a real browser (run by `make e2e`, part of `make test`).

Headless Chromium from Debian (`make browser`: /usr/bin/chromium, fonts-noto-cjk)
driven by Playwright, never a downloaded browser. The real bot (Rasa + action
server, demo profile) and the page server run on free local ports. Screenshots
go to test-output/web/ (desktop.png, phone.png).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    ViewportSize,
    sync_playwright,
)

from actions import identity
from devtools.harness import Bot, running_bot, stop, wait_until_up
from devtools.servers import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
OUTPUT = ROOT / "test-output" / "web"
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}
SECRET = "web-chat-test-secret-0123456789abcdef"
REPLY_TIMEOUT_MS = 90_000  # a loaded 2-core machine: NLU + actions per turn
INJECTION = '<img src=x onerror="window.__pwned=1">'
SITUATION = "我的支付宝里找不到借呗了"


# The pages' ports, known before the bot starts: its socket.io channel accepts
# browsers from these origins only (WEB_ALLOWED_ORIGINS).
PAGE_PORTS = {"demo": free_port(), "prod": free_port()}


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bot]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} missing: run `make browser` (apt-get install chromium)"
        )
    workdir = tmp_path_factory.mktemp("web_chat")
    origins = ",".join(f"http://127.0.0.1:{port}" for port in PAGE_PORTS.values())
    demo = {
        "BOT_PROFILE": "demo",
        "ACCOUNT_IDENTITY": "sender",
        "WEB_ALLOWED_ORIGINS": origins,
    }
    with running_bot(workdir, demo) as running:
        yield running


def page_server(bot: Bot, workdir: Path, port: int, **env: str) -> Iterator[str]:
    """`python -m web.server` on ``port``, pointing at the bot."""
    log = workdir / f"webpage-{port}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "web.server", "--port", str(port)],
        cwd=ROOT,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "RASA_PUBLIC_URL": bot.rasa_url,
            # The agent desk's own store: the demo page adds the demo agents,
            # which the production profile's page would refuse to start with.
            "ACCOUNT_DB_URL": f"sqlite:///{workdir / 'desk.db'}",
            **env,
        },
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/config.json", process, log)
        yield f"http://127.0.0.1:{port}/"
    finally:
        stop(process)


@pytest.fixture(scope="module")
def demo_page(bot: Bot, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from page_server(
        bot, tmp_path_factory.mktemp("page"), PAGE_PORTS["demo"], BOT_PROFILE="demo"
    )


@pytest.fixture(scope="module")
def prod_page(bot: Bot, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The production profile's page with the demo login standing in for a host."""
    yield from page_server(
        bot,
        tmp_path_factory.mktemp("page"),
        PAGE_PORTS["prod"],
        BOT_PROFILE="prod",
        WEB_DEMO_LOGIN="1",
        IDENTITY_JWT_SECRET=SECRET,
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield launched
        launched.close()


class Watch:
    """What a page did: every request and WebSocket URL, console errors."""

    def __init__(self, page: Page) -> None:
        self.urls: List[str] = []
        self.errors: List[str] = []
        page.on("request", lambda request: self.urls.append(request.url))
        page.on("websocket", lambda socket: self.urls.append(socket.url))
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def hosts(self) -> set[str]:
        return {str(urlsplit(url).hostname) for url in self.urls}


def bubbles(page: Page, who: str = "") -> List[str]:
    return page.locator(
        f".msg{'.' + who if who else ''}:not(.typing) .bubble"
    ).all_inner_texts()


def wait_ready(page: Page) -> None:
    """Connected and the session confirmed: the send button is enabled."""
    page.wait_for_selector("#send:not([disabled])", timeout=REPLY_TIMEOUT_MS)


def wait_quiet(page: Page, quiet_s: float = 3.0) -> None:
    """Until no new message has arrived for ``quiet_s`` (the bot answers in parts)."""
    deadline = time.monotonic() + REPLY_TIMEOUT_MS / 1000
    count, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now_count = page.locator(".msg:not(.typing)").count()
        if now_count != count:
            count, since = now_count, time.monotonic()
        elif (
            time.monotonic() - since >= quiet_s and page.locator("#typing").is_hidden()
        ):
            return
        page.wait_for_timeout(250)
    raise AssertionError("the bot kept sending messages")


def send(page: Page, text: str) -> None:
    page.fill("#input", text)
    page.press("#input", "Enter")


def watch_typing_indicator(page: Page) -> None:
    """Note in the page when the typing indicator is shown (it may be brief)."""
    page.evaluate(
        """() => {
            window.__typingSeen = false;
            const typing = document.getElementById("typing");
            new MutationObserver(() => { if (!typing.hidden) window.__typingSeen = true; })
                .observe(typing, {attributes: true, attributeFilter: ["hidden"]});
        }"""
    )


def assert_fits(page: Page, viewport: ViewportSize) -> None:
    """No sideways scrolling, every bubble inside the screen, the input visible."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"], f"page is {width}px wide"
    for box in [b.bounding_box() for b in page.locator(".msg .bubble").all()]:
        if box is not None:
            assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"] + 0.5
    for selector in ("#input", "#send"):
        input_box = page.locator(selector).bounding_box()
        assert input_box is not None
        assert input_box["y"] + input_box["height"] <= viewport["height"]


def test_chat_in_the_browser(browser: Browser, demo_page: str, bot: Bot) -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    page = context.new_page()
    watch = Watch(page)
    page.goto(demo_page)

    # The page says it is a demo; the demo switch picks a fixture account.
    assert page.locator("#demo").is_visible()
    assert "演示" in page.inner_text("#demo")
    page.select_option("#demo-account", "demo_account_frozen")
    wait_ready(page)

    watch_typing_indicator(page)
    send(page, SITUATION)
    page.locator(".msg.bot .bubble", has_text="冻结").first.wait_for(
        timeout=REPLY_TIMEOUT_MS
    )
    assert page.evaluate("window.__typingSeen") is True
    assert bubbles(page, "user") == [SITUATION]
    page.wait_for_selector(".quick-reply:not([disabled])", timeout=REPLY_TIMEOUT_MS)
    wait_quiet(page)
    # The README's picture of the page (docs/img/chat-page.png is a copy).
    page.screenshot(path=str(OUTPUT / "first-answer.png"))

    # A quick reply: its title becomes the user's bubble, the bot answers.
    page.wait_for_selector(".quick-reply:not([disabled])", timeout=REPLY_TIMEOUT_MS)
    wait_quiet(page)
    chips = page.locator(".quick-reply:not([disabled])")
    titles = chips.all_inner_texts()
    title = next((t for t in titles if t != "转人工"), titles[0])
    bot_count = len(bubbles(page, "bot"))
    chips.filter(has_text=title).first.click()
    page.locator(".msg.user .bubble", has_text=title).wait_for()
    assert bubbles(page, "user")[-1] == title
    page.wait_for_function(
        f"document.querySelectorAll('.msg.bot .bubble').length > {bot_count}",
        timeout=REPLY_TIMEOUT_MS,
    )
    assert page.locator(".quick-replies .chosen", has_text=title).count() == 1
    wait_quiet(page)

    # A reload shows the same conversation.
    before = bubbles(page)
    page.reload()
    wait_ready(page)
    assert bubbles(page) == before
    assert page.input_value("#demo-account") == "demo_account_frozen"

    # Markup typed by the user is shown as text and runs nothing.
    send(page, INJECTION)
    page.locator(".msg.user .bubble", has_text=INJECTION).wait_for()
    page.wait_for_function(
        f"document.querySelectorAll('.msg.bot .bubble').length > {len(bubbles(page, 'bot'))}",
        timeout=REPLY_TIMEOUT_MS,
    )
    wait_quiet(page)
    assert bubbles(page, "user")[-1] == INJECTION
    assert page.locator("#log img").count() == 0
    assert page.evaluate("window.__pwned") is None

    # The conversation id is the demo account: the bot's tracker has the turns.
    stored = [e.get("text") for e in bot.tracker("demo_account_frozen")["events"]]
    assert SITUATION in stored and INJECTION in stored

    page.screenshot(path=str(OUTPUT / "desktop.png"))
    assert watch.hosts() == {"127.0.0.1"}, watch.urls
    assert watch.errors == []

    # The same conversation on a phone-sized screen (same browser storage).
    phone = browser.new_context(
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
        storage_state=context.storage_state(),
    )
    phone_page = phone.new_page()
    phone_watch = Watch(phone_page)
    phone_page.goto(demo_page)
    wait_ready(phone_page)
    assert bubbles(phone_page) == bubbles(page)
    assert_fits(phone_page, PHONE)
    phone_page.screenshot(path=str(OUTPUT / "phone.png"))
    assert phone_watch.hosts() == {"127.0.0.1"}, phone_watch.urls
    assert phone_watch.errors == []
    phone.close()
    context.close()


def test_bot_text_is_rendered_as_text(browser: Browser, demo_page: str) -> None:
    """Whatever a bot message or quick reply holds is shown as text, never run."""
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.goto(demo_page)
    wait_ready(page)
    session = page.evaluate("localStorage.getItem('jiebei.demo.session')")
    long_line = "借呗" * 120
    stored: List[Dict[str, Any]] = [
        {"from": "bot", "text": INJECTION + "\n第二行\n\n第四行", "buttons": []},
        {"from": "bot", "text": long_line, "buttons": [
            {"title": '<b onmouseover="window.__pwned=2">粗体</b>', "payload": "/affirm"}
        ]},
    ]  # fmt: skip
    page.evaluate(
        "([key, value]) => localStorage.setItem(key, value)",
        [f"jiebei.demo.transcript.{session}", json.dumps(stored)],
    )
    page.reload()
    wait_ready(page)
    assert bubbles(page, "bot") == [stored[0]["text"], long_line]
    chip = page.locator(".quick-reply")
    assert chip.inner_text() == stored[1]["buttons"][0]["title"]
    chip.hover()
    assert page.locator("#log img, #log b").count() == 0
    assert page.evaluate("window.__pwned") is None
    # line breaks are kept; the long line wraps inside a phone screen
    first = page.locator(".msg.bot .bubble").first.bounding_box()
    assert first is not None and first["height"] > 4 * 20
    assert_fits(page, PHONE)
    context.close()


def test_demo_switch_and_new_conversation(browser: Browser, demo_page: str) -> None:
    """Each conversation keeps its own transcript; 新对话 starts an empty one."""
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.goto(demo_page)
    wait_ready(page)
    key = "jiebei.demo.session"
    anonymous = page.evaluate(f"localStorage.getItem('{key}')")
    assert anonymous.startswith("web-") and page.input_value("#demo-account") == ""
    page.evaluate(
        "([key, value]) => localStorage.setItem(key, value)",
        [
            f"jiebei.demo.transcript.{anonymous}",
            json.dumps([{"from": "user", "text": "匿名的一句"}]),
        ],
    )
    page.reload()
    wait_ready(page)
    assert bubbles(page) == ["匿名的一句"]
    assert page.locator("#welcome").is_hidden()

    page.select_option("#demo-account", "demo_healthy")
    wait_ready(page)
    assert page.evaluate(f"localStorage.getItem('{key}')") == "demo_healthy"
    assert bubbles(page) == [] and page.locator("#welcome").is_visible()

    page.select_option("#demo-account", "")  # back to the same anonymous user
    wait_ready(page)
    assert page.evaluate(f"localStorage.getItem('{key}')") == anonymous
    assert bubbles(page) == ["匿名的一句"]

    page.click("#new-chat")
    wait_ready(page)
    fresh = page.evaluate(f"localStorage.getItem('{key}')")
    assert fresh.startswith("web-") and fresh != anonymous
    assert bubbles(page) == [] and page.locator("#welcome").is_visible()
    assert (
        page.evaluate(f"localStorage.getItem('jiebei.demo.transcript.{anonymous}')")
        is None
    )
    context.close()


def last_user_metadata(bot: Bot, session: str) -> Dict[str, Any]:
    """The metadata of the conversation's last user message, once it is stored."""
    deadline = time.monotonic() + REPLY_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        events = bot.tracker(session)["events"]
        users = [e for e in events if e["event"] == "user"]
        if users:
            return dict(users[-1].get("metadata") or {})
        time.sleep(0.5)  # Rasa stores the turn after it has answered
    raise AssertionError(f"no user message stored for {session}")


def test_identity_token_is_forwarded(
    browser: Browser, prod_page: str, bot: Bot
) -> None:
    """A host's signed identity goes to the bot in every message's metadata."""
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.goto(prod_page + "?as=demo_account_frozen")
    wait_ready(page)
    assert page.locator("#demo").is_hidden()  # no demo switch in production
    assert "demo_account_frozen" in page.inner_text("#login-notice")
    send(page, "你好")
    page.locator(".msg.bot .bubble").first.wait_for(timeout=REPLY_TIMEOUT_MS)
    session = page.evaluate("localStorage.getItem('jiebei.prod.session')")
    assert session and session.startswith("web-")
    token = last_user_metadata(bot, session).get(identity.METADATA_KEY)
    assert identity.verify(token, SECRET) == "demo_account_frozen"

    # Without a host login the page sends no identity at all.
    anonymous = browser.new_context(viewport=DESKTOP)
    page = anonymous.new_page()
    page.goto(prod_page)
    wait_ready(page)
    assert page.locator("#login-notice").is_hidden()
    send(page, "你好")
    page.locator(".msg.bot .bubble").first.wait_for(timeout=REPLY_TIMEOUT_MS)
    session = page.evaluate("localStorage.getItem('jiebei.prod.session')")
    assert identity.METADATA_KEY not in last_user_metadata(bot, session)
    anonymous.close()
    context.close()
