"""The agent desk in two real browsers: a user on the chat page, an agent on the console.

Headless Chromium from Debian (`make browser`) driven by Playwright, as
tests/e2e/test_web_chat.py. The real bot (Rasa + action server, demo profile)
and the page server with the desk (web/server.py, web/agent_api.py) run on
free local ports over one SQLite case store and tracker store.

The user asks for a person; the case is in the agent's queue within 2 s of the
bot's handoff reply; the agent claims it and writes; the user sees 人工客服 and
the agent's name, answers, and the agent sees it live; the agent resolves and
the bot answers the user again. Screenshots go to test-output/agent/
(queue.png, case.png, phone.png); docs/img/agent-desk.png is a copy of case.png.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Iterator, List
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Route,
    ViewportSize,
    expect,
    sync_playwright,
)

from devtools.desk import DeskAgent
from devtools.harness import Bot, running_bot, start_page_server, stop
from devtools.servers import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
OUTPUT = ROOT / "test-output" / "agent"
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}
REPLY_TIMEOUT_MS = 90_000  # a loaded 2-core machine: NLU + actions per turn
QUEUE_WITHIN_S = 2.0  # the issue: the case is in the agent's queue within 2 s
AGENT, PASSWORD, AGENT_NAME = "agent1", "demo-password", "小安"
USER = "demo_account_frozen"  # the demo switch's account: the conversation id
SITUATION = "我的支付宝里找不到借呗了"
ASK_FOR_PERSON = "借呗不见了，我要转人工"
INJECTION = '<img src=x onerror="window.__pwned=1">'
# A user on another channel (REST) who described a scam and asked for a person.
SCAM_USER = "desk-e2e-scam-caller"
SCAM_WORDS = ["有人打电话说能帮我开通借呗，让我先转一笔保证金", "转人工"]

BOT_BUBBLE = ".msg.bot:not(.typing) .bubble"

PAGE_PORT = free_port()  # known before the bot starts: its allowed origin


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bot]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} missing: run `make browser` (apt-get install chromium)"
        )
    demo = {
        "BOT_PROFILE": "demo",
        "ACCOUNT_IDENTITY": "sender",
        "WEB_ALLOWED_ORIGINS": f"http://127.0.0.1:{PAGE_PORT}",
    }
    with running_bot(tmp_path_factory.mktemp("desk_bot"), demo) as running:
        yield running


@pytest.fixture(scope="module")
def page_server(bot: Bot, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The chat page and the desk, on the bot's stores; its base URL."""
    log = tmp_path_factory.mktemp("desk_page") / "page.log"
    process = start_page_server(bot.env, PAGE_PORT, log, bot.rasa_url)
    try:
        yield f"http://127.0.0.1:{PAGE_PORT}"
    finally:
        stop(process)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield launched
        launched.close()


class Watch:
    """What a page did: the hosts it reached, its console errors."""

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


def sign_in(page: Page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/agent/")
    page.fill("#login-username", username)
    page.fill("#login-password", password)
    page.click("#login-submit")


def chat_ready(page: Page) -> None:
    """The chat page is connected and its session confirmed."""
    page.wait_for_selector("#send:not([disabled])", timeout=REPLY_TIMEOUT_MS)


def say(page: Page, text: str) -> None:
    page.fill("#input", text)
    page.press("#input", "Enter")


def bot_bubbles(page: Page) -> int:
    return page.locator(BOT_BUBBLE).count()


def wait_for_bot_bubble(page: Page, count_before: int, timeout_ms: int) -> None:
    """Until the bot has sent a message more than ``count_before``."""
    page.locator(BOT_BUBBLE).nth(count_before).wait_for(timeout=timeout_ms)


def test_a_person_answers_in_the_same_chat(
    browser: Browser, bot: Bot, page_server: str
) -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    # A scam case from another channel waits already: it goes on top, marked.
    for words in SCAM_WORDS:
        bot.say(SCAM_USER, words)

    agent_context = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    agent = agent_context.new_page()
    agent_watch = Watch(agent)
    sign_in(agent, page_server, AGENT, PASSWORD)
    agent.locator("#me-name", has_text=AGENT_NAME).wait_for()
    scam_item = agent.locator("#queue-list .case-item.scam")
    scam_item.wait_for()
    assert "⚠ 疑似诈骗" in scam_item.inner_text()

    user_context = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    user = user_context.new_page()
    user_watch = Watch(user)
    user.goto(f"{page_server}/")
    user.select_option("#demo-account", USER)
    chat_ready(user)

    # The bot finds the cause first; then the user asks for a person, and the
    # bot hands off with the case number.
    say(user, SITUATION)
    user.locator(".msg.bot .bubble", has_text="冻结").first.wait_for(
        timeout=REPLY_TIMEOUT_MS
    )
    user.wait_for_selector(".quick-reply:not([disabled])", timeout=REPLY_TIMEOUT_MS)
    say(user, ASK_FOR_PERSON)
    handoff = user.locator(".msg.bot .bubble", has_text="工单号")
    handoff.wait_for(timeout=REPLY_TIMEOUT_MS)
    replied = time.monotonic()
    found = re.search(r"工单号\s*([0-9A-Z]+)", handoff.inner_text())
    assert found, handoff.inner_text()
    case_id = found.group(1)
    item = agent.locator(f'#queue-list .case-item[data-case-id="{case_id}"]')
    item.wait_for(timeout=10_000)
    in_queue_s = time.monotonic() - replied
    assert in_queue_s <= QUEUE_WITHIN_S, f"in the queue after {in_queue_s:.2f}s"
    print(f"\ncase {case_id} in the agent's queue {in_queue_s:.2f}s after the reply")

    # Suspected scams first, then the oldest; the wait ticks.
    items = agent.locator("#queue-list .case-item")
    assert "scam" in (items.first.get_attribute("class") or "")
    assert items.last.get_attribute("data-case-id") == case_id
    assert ASK_FOR_PERSON in item.inner_text() or "借呗" in item.inner_text()
    wait = item.locator(".wait")
    expect(wait).not_to_have_text(wait.inner_text(), timeout=5000)
    agent.screenshot(path=str(OUTPUT / "queue.png"))

    # The agent claims: the case view with its summary and the whole transcript.
    item.locator(".claim").click()
    agent.wait_for_selector("#composer:not([hidden])")
    expect(agent.locator(f'#mine-list [data-case-id="{case_id}"]')).to_have_count(1)
    expect(agent.locator(f'#queue-list [data-case-id="{case_id}"]')).to_have_count(0)
    summary = agent.inner_text("#summary-list")
    assert USER in summary and "疑似诈骗" in summary
    assert "支付宝账户被冻结（account_frozen）" in summary  # cause and current step
    assert "冻结" in agent.inner_text("#facts-list")  # the record's account status
    assert agent.locator("#scam-banner").is_hidden()
    assert agent.locator(".entry.from-user", has_text=ASK_FOR_PERSON).count() == 1
    assert agent.locator(".entry.from-bot", has_text=case_id).count() >= 1
    agent.evaluate("window.__sameDocument = true")

    # The agent writes; the user sees 人工客服 and the agent's name, not the bot.
    greeting = "您好，我是人工客服小安。您的借呗入口我来帮您查一下。"
    agent.fill("#reply", greeting)
    agent.press("#reply", "Enter")
    agent.locator(".entry.from-agent", has_text=greeting).wait_for()
    assert agent.input_value("#reply") == ""
    from_agent = user.locator(".msg.agent", has_text=greeting)
    from_agent.wait_for(timeout=30_000)
    label = from_agent.locator(".agent-label").inner_text()
    assert label == f"人工客服 · {AGENT_NAME}", label
    assert user.locator(".msg.bot .bubble", has_text=greeting).count() == 0

    # Shift+Enter is a new line, not a send.
    agent.fill("#reply", "第一行")
    agent.press("#reply", "Shift+Enter")
    agent.type("#reply", "第二行")
    assert agent.input_value("#reply") == "第一行\n第二行"
    assert agent.locator(".entry.from-agent").count() == 1
    agent.fill("#reply", "")

    # The user answers; the agent sees it live, without reloading.
    answer = "我的账户好像被冻结了，怎么办"
    say(user, answer)
    agent.locator(".entry.from-user", has_text=answer).wait_for(timeout=30_000)
    # Markup typed by the user stays text in the console.
    say(user, INJECTION)
    agent.locator(".entry.from-user", has_text="onerror").wait_for(timeout=30_000)
    assert agent.locator("#transcript img").count() == 0
    assert agent.evaluate("window.__pwned") is None
    assert agent.evaluate("window.__sameDocument") is True
    agent.locator("#toast").wait_for(state="hidden")
    agent.screenshot(path=str(OUTPUT / "case.png"))

    # The agent resolves with a note: the bot greets the user and answers again.
    bots_before = bot_bubbles(user)
    agent.click("#resolve-open")
    agent.fill("#resolve-note", "已指导用户解除冻结")
    agent.click("#resolve-submit")
    agent.wait_for_selector("#case-panel", state="hidden")
    expect(agent.locator(f'#mine-list [data-case-id="{case_id}"]')).to_have_count(0)
    wait_for_bot_bubble(user, bots_before, 30_000)
    bots_before = bot_bubbles(user)
    say(user, "借呗怎么还款")
    wait_for_bot_bubble(user, bots_before, REPLY_TIMEOUT_MS)
    desk = DeskAgent(page_server)
    assert desk.login(AGENT, PASSWORD).ok
    resolved = desk.case(case_id).body["case"]
    assert resolved["status"] == "resolved"
    assert resolved["resolution"] == "已指导用户解除冻结"

    assert agent_watch.hosts() == {"127.0.0.1"}, agent_watch.urls
    assert user_watch.hosts() == {"127.0.0.1"}, user_watch.urls
    assert agent_watch.errors == []
    assert user_watch.errors == []
    agent_context.close()
    user_context.close()


def test_lost_claim_transfer_and_unclaim(browser: Browser, page_server: str) -> None:
    """A claim lost to another agent says who has it; transfer; back to the queue."""
    first = browser.new_context(viewport=DESKTOP).new_page()
    second = browser.new_context(viewport=DESKTOP).new_page()
    first_watch, second_watch = Watch(first), Watch(second)
    sign_in(first, page_server, AGENT, PASSWORD)
    sign_in(second, page_server, "agent2", PASSWORD)
    scam = second.locator("#queue-list .case-item.scam").first
    scam.wait_for()
    case_id = scam.get_attribute("data-case-id")
    assert case_id

    # agent1 (over the API) claims just before agent2's click reaches the server.
    desk = DeskAgent(page_server)
    assert desk.login(AGENT, PASSWORD).ok

    def agent1_first(route: Route) -> None:
        assert desk.act(case_id, "claim").status == 200
        route.continue_()

    second.route(f"**/agent/api/cases/{case_id}/claim", agent1_first)
    scam.locator(".claim").click()
    expect(second.locator("#toast")).to_have_text(f"已被 {AGENT_NAME} 接入")
    expect(second.locator(f'#queue-list [data-case-id="{case_id}"]')).to_have_count(0)

    # agent1 has it among their cases and transfers it to agent2 (小宁).
    mine = first.locator(f'#mine-list [data-case-id="{case_id}"]')
    mine.locator(".case-open").click()
    first.wait_for_selector("#composer:not([hidden])")
    first.click("#transfer-open")
    first.select_option("#transfer-to", "agent2")
    first.click("#transfer-submit")
    expect(first.locator("#toast")).to_have_text("已转接给 小宁")
    expect(mine).to_have_count(0)

    # agent2 now holds it, and puts it back into the queue.
    held = second.locator(f'#mine-list [data-case-id="{case_id}"]')
    held.locator(".case-open").click()
    second.wait_for_selector("#composer:not([hidden])")
    assert "坐席 小宁" in second.inner_text("#case-state")
    second.click("#unclaim")
    expect(second.locator("#toast")).to_have_text("已退回队列")
    second.locator(f'#queue-list [data-case-id="{case_id}"]').wait_for()
    first.locator(f'#queue-list [data-case-id="{case_id}"]').wait_for()
    assert desk.case(case_id).body["case"]["status"] == "waiting"

    assert first_watch.errors == []
    # The browser logs the refused claim (409); nothing else went wrong.
    assert len(second_watch.errors) == 1 and "409" in second_watch.errors[0]
    first.context.close()
    second.context.close()


def test_the_console_on_a_phone(browser: Browser, page_server: str) -> None:
    """390 px wide: the queue, then the case alone with a way back; no sideways scroll."""
    context = browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    watch = Watch(page)
    sign_in(page, page_server, "agent2", PASSWORD)
    scam = page.locator("#queue-list .case-item.scam").first
    scam.wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    scam.locator(".case-open").click()
    page.wait_for_selector("#case-panel:not([hidden])")
    assert page.locator("#sidebar").is_hidden()
    assert page.locator("#scam-banner").is_visible()
    assert page.locator("#claim").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=str(OUTPUT / "phone.png"))
    page.click("#back")
    assert page.locator("#sidebar").is_visible()
    page.click("#logout")
    page.wait_for_selector("#login-form")
    assert page.locator("#login-notice", has_text="退出").is_visible()
    assert watch.errors == []
    context.close()


def test_sign_in_errors_are_shown(browser: Browser, page_server: str) -> None:
    """A wrong password says so; past the limit (5 per username) the wait is shown."""
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    watch = Watch(page)
    page.goto(f"{page_server}/agent/")
    error = page.locator("#login-error")
    for attempt in range(5):
        page.fill("#login-username", "agent2")
        page.fill("#login-password", f"wrong-{attempt}")
        page.click("#login-submit")
        expect(error).to_have_text("账号或密码错误。")
        page.evaluate("document.getElementById('login-error').textContent = ''")
    page.fill("#login-password", PASSWORD)  # the right one is refused too now
    page.click("#login-submit")
    expect(error).to_contain_text("登录尝试次数过多")
    expect(error).to_contain_text("后再试")
    assert page.locator("#desk-view").is_hidden()
    # The browser logs each refused request; nothing else went wrong.
    refused = [e for e in watch.errors if "status of 401" in e or "status of 429" in e]
    assert refused and refused == watch.errors, watch.errors
    context.close()
