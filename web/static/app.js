// 借呗助手 chat widget: Rasa's socket.io channel (user_uttered / bot_uttered,
// session persistence), no framework. Every text from the bot, a human agent or
// the user is put on the page with textContent, never parsed as HTML. A message
// with `human_agent` is a person's (the agent desk, desk/relay.py): shown with
// the label "人工客服 · <name>" and its own style, never as the bot's.
"use strict";

(() => {
  const STORE_PREFIX = "jiebei.";
  const MAX_STORED_MESSAGES = 200;
  const TYPING_TIMEOUT_MS = 15000;
  const TOKEN_REFRESH_MARGIN_S = 60;
  const SUGGESTIONS = ["我的支付宝里找不到借呗了", "借呗怎么还款", "借呗额度怎么提升", "转人工"];
  const ANONYMOUS = "";
  const AGENT_LABEL = "人工客服";
  const MAX_AGENT_NAME = 32;

  const $ = (id) => document.getElementById(id);
  const ui = {
    status: $("status"),
    newChat: $("new-chat"),
    demo: $("demo"),
    demoAccount: $("demo-account"),
    loginNotice: $("login-notice"),
    log: $("log"),
    welcome: $("welcome"),
    suggestions: $("suggestions"),
    typing: $("typing"),
    composer: $("composer"),
    input: $("input"),
    send: $("send"),
  };

  let config = null;
  let socket = null;
  let sessionId = null;
  let ready = false; // connected and the session confirmed for this socket
  let transcript = [];
  let typingTimer = null;
  const entryOfBox = new WeakMap(); // quick-reply box → its transcript entry

  // localStorage may be unavailable (private mode, blocked): the chat still works.
  const store = {
    key: (name) => `${STORE_PREFIX}${config.profile}.${name}`,
    get(name) {
      try { return localStorage.getItem(this.key(name)); } catch { return null; }
    },
    set(name, value) {
      try { localStorage.setItem(this.key(name), value); } catch { /* full or blocked */ }
    },
    remove(name) {
      try { localStorage.removeItem(this.key(name)); } catch { /* blocked */ }
    },
  };

  function randomId() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function demoIds() {
    return new Set((config.demo_accounts || []).map((account) => account.id));
  }

  function setStatus(text, offline) {
    ui.status.textContent = text;
    ui.status.classList.toggle("offline", Boolean(offline));
  }

  function updateComposer() {
    ui.send.disabled = !ready;
  }

  // ---- transcript: rendered and kept per conversation in localStorage ----

  function loadTranscript() {
    try {
      const saved = JSON.parse(store.get(`transcript.${sessionId}`) || "[]");
      transcript = Array.isArray(saved) ? saved.filter(validEntry) : [];
    } catch {
      transcript = [];
    }
  }

  function validEntry(entry) {
    return entry && typeof entry.text === "string" && ["bot", "user", "agent"].includes(entry.from);
  }

  function saveTranscript() {
    transcript = transcript.slice(-MAX_STORED_MESSAGES);
    store.set(`transcript.${sessionId}`, JSON.stringify(transcript));
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function renderEntry(entry) {
    const row = element("div", `msg ${entry.from}`);
    if (entry.from === "bot") row.append(element("span", "avatar", "借"));
    if (entry.from === "agent") row.append(element("span", "avatar", "人"));
    const body = element("div", "msg-body");
    if (entry.from === "agent") {
      const name = typeof entry.agentName === "string" ? entry.agentName : "";
      body.append(element("div", "agent-label", name ? `${AGENT_LABEL} · ${name}` : AGENT_LABEL));
    }
    if (entry.text) body.append(element("div", "bubble", entry.text));
    if (entry.buttons && entry.buttons.length) {
      const box = element("div", "quick-replies");
      box.setAttribute("role", "group");
      box.setAttribute("aria-label", "快捷回复");
      entryOfBox.set(box, entry);
      for (const button of entry.buttons) {
        const chip = element("button", "chip quick-reply", button.title);
        chip.type = "button";
        chip.disabled = Boolean(entry.used) || !ready;
        chip.dataset.payload = button.payload;
        if (entry.used && entry.chosen === button.title) chip.classList.add("chosen");
        chip.addEventListener("click", () => chooseQuickReply(entry, button));
        box.append(chip);
      }
      body.append(box);
    }
    row.append(body);
    ui.log.insertBefore(row, ui.typing);
    return row;
  }

  function renderAll() {
    for (const node of Array.from(ui.log.querySelectorAll(".msg:not(.typing)"))) node.remove();
    for (const entry of transcript) renderEntry(entry);
    ui.welcome.hidden = transcript.length > 0;
    scrollToEnd();
  }

  function add(entry) {
    transcript.push(entry);
    saveTranscript();
    ui.welcome.hidden = true;
    renderEntry(entry);
    scrollToEnd();
  }

  function scrollToEnd() {
    ui.log.scrollTop = ui.log.scrollHeight;
  }

  // Quick replies of earlier messages stop working once the user has answered.
  function retireQuickReplies() {
    let changed = false;
    for (const entry of transcript) {
      if (entry.buttons && entry.buttons.length && !entry.used) {
        entry.used = true;
        changed = true;
      }
    }
    if (changed) saveTranscript();
    for (const chip of ui.log.querySelectorAll(".quick-reply")) chip.disabled = true;
  }

  function refreshQuickReplies() {
    for (const box of ui.log.querySelectorAll(".quick-replies")) {
      const entry = entryOfBox.get(box);
      for (const chip of box.querySelectorAll(".quick-reply")) {
        chip.disabled = !ready || !entry || Boolean(entry.used);
      }
    }
  }

  // ---- typing indicator ----

  function showTyping() {
    ui.typing.hidden = false;
    scrollToEnd();
    clearTimeout(typingTimer);
    typingTimer = setTimeout(hideTyping, TYPING_TIMEOUT_MS);
  }

  function hideTyping() {
    clearTimeout(typingTimer);
    ui.typing.hidden = true;
  }

  // ---- identity token (only when the host gave one) ----

  function tokenExpiry(token) {
    try {
      const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return Number(JSON.parse(atob(payload)).exp) || 0;
    } catch {
      return 0;
    }
  }

  async function currentToken() {
    if (!config.identity_token) return null;
    if (tokenExpiry(config.identity_token) - Date.now() / 1000 < TOKEN_REFRESH_MARGIN_S) {
      try {
        const fresh = await fetchConfig();
        if (fresh.identity_token) config.identity_token = fresh.identity_token;
      } catch {
        // keep the old token: the bot then treats the user as anonymous
      }
    }
    return config.identity_token;
  }

  // ---- sending and receiving ----

  // While a person has the conversation the bot stays silent: no "typing"
  // dots for a reply that the bot will not write.
  function withAgent() {
    const last = transcript.filter((entry) => entry.from !== "user").pop();
    return Boolean(last && last.from === "agent");
  }

  async function sendMessage(message, shown) {
    if (!ready || !message) return;
    retireQuickReplies();
    add({ from: "user", text: shown });
    if (!withAgent()) showTyping();
    const payload = { message, session_id: sessionId };
    const token = await currentToken();
    if (token) payload.metadata = { identity_token: token };
    socket.emit("user_uttered", payload);
  }

  function chooseQuickReply(entry, button) {
    if (!ready || entry.used) return;
    entry.used = true;
    entry.chosen = button.title;
    saveTranscript();
    renderAll();
    sendMessage(button.payload, button.title);
  }

  function quickReplies(data) {
    const raw = Array.isArray(data.quick_replies) ? data.quick_replies
      : Array.isArray(data.buttons) ? data.buttons : [];
    return raw
      .filter((b) => b && (typeof b.title === "string" || typeof b.payload === "string"))
      .map((b) => ({
        title: String(b.title ?? b.payload),
        payload: String(b.payload ?? b.title),
      }));
  }

  function onBotMessage(data) {
    hideTyping();
    if (!data || typeof data !== "object") return;
    let text = typeof data.text === "string" ? data.text : "";
    if (!text && data.attachment) text = "[附件]";
    const agent = data.human_agent;
    if (agent && typeof agent === "object") {
      const name = typeof agent.name === "string" ? agent.name.trim().slice(0, MAX_AGENT_NAME) : "";
      if (text) add({ from: "agent", agentName: name, text });
      return;
    }
    const buttons = quickReplies(data);
    if (!text && !buttons.length) return;
    add({ from: "bot", text, buttons });
  }

  // ---- connection and conversations ----

  function connect() {
    const url = new URL(config.rasa_url);
    socket = io(url.origin, {
      path: config.socketio_path || "/socket.io",
      // WebSocket only: Rasa's socket.io server answers no CORS preflight, so
      // long-polling from this page's origin would be blocked by the browser.
      transports: ["websocket"],
      reconnectionDelayMax: 10000,
    });
    socket.on("connect", () => {
      ready = false;
      setStatus("正在连接…");
      socket.emit("session_request", { session_id: sessionId });
    });
    socket.on("session_confirm", (confirmed) => {
      if (confirmed !== sessionId) return;
      ready = true;
      setStatus("在线");
      updateComposer();
      refreshQuickReplies();
    });
    socket.on("disconnect", () => {
      ready = false;
      hideTyping();
      setStatus("连接已断开，正在重新连接…", true);
      updateComposer();
      refreshQuickReplies();
    });
    socket.on("connect_error", () => {
      setStatus("暂时连不上服务，正在重试…", true);
    });
    socket.on("bot_uttered", onBotMessage);
  }

  // A conversation change reconnects, so the socket is in no other session's room.
  function switchSession(id) {
    sessionId = id;
    store.set("session", id);
    loadTranscript();
    hideTyping();
    renderAll();
    ready = false;
    updateComposer();
    if (socket) {
      socket.disconnect();
      socket.connect();
    }
  }

  function startNewConversation() {
    store.remove(`transcript.${sessionId}`);
    transcript = [];
    // A demo account's conversation id is its account id, so it keeps it.
    const keep = config.profile === "demo" && demoIds().has(sessionId);
    if (!keep) store.set("anonymous", "");
    switchSession(keep ? sessionId : anonymousSession(true));
  }

  function anonymousSession(fresh) {
    let id = fresh ? "" : store.get("anonymous");
    if (!id || demoIds().has(id)) {
      id = randomId();
      store.set("anonymous", id);
    }
    return id;
  }

  function setUpDemoSwitch() {
    const accounts = config.demo_accounts || [];
    ui.demoAccount.append(new Option("匿名用户（机器人会询问您的账户情况）", ANONYMOUS));
    for (const account of accounts) {
      ui.demoAccount.append(new Option(`${account.id} · ${account.description}`, account.id));
    }
    ui.demoAccount.value = demoIds().has(sessionId) ? sessionId : ANONYMOUS;
    ui.demoAccount.addEventListener("change", () => {
      const chosen = ui.demoAccount.value;
      switchSession(chosen === ANONYMOUS ? anonymousSession(false) : chosen);
    });
    ui.demo.hidden = false;
  }

  function initialSession() {
    const saved = store.get("session");
    if (saved && /^[A-Za-z0-9_-]{1,64}$/.test(saved)) return saved;
    return anonymousSession(false);
  }

  function setUpSuggestions() {
    for (const text of SUGGESTIONS) {
      const chip = element("button", "chip suggestion", text);
      chip.type = "button";
      chip.addEventListener("click", () => sendMessage(text, text));
      ui.suggestions.append(chip);
    }
  }

  async function fetchConfig() {
    const as = new URLSearchParams(location.search).get("as");
    const url = as ? `config.json?as=${encodeURIComponent(as)}` : "config.json";
    const response = await fetch(url, { cache: "no-store" });
    if (!response.ok) throw new Error(`config.json: ${response.status}`);
    return response.json();
  }

  async function start() {
    try {
      config = await fetchConfig();
    } catch {
      setStatus("页面配置加载失败，请刷新重试", true);
      return;
    }
    if (typeof io !== "function") {
      setStatus("聊天组件加载失败，请刷新重试", true);
      return;
    }
    sessionId = initialSession();
    store.set("session", sessionId);
    if (config.profile === "demo") setUpDemoSwitch();
    if (config.demo_login) {
      ui.loginNotice.textContent = `演示登录：已用演示账户 ${config.demo_login} 的签名身份登录（代替宿主网站的真实登录）。`;
      ui.loginNotice.hidden = false;
    }
    setUpSuggestions();
    loadTranscript();
    renderAll();
    ui.composer.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = ui.input.value.trim();
      if (!text || !ready) return;
      ui.input.value = "";
      sendMessage(text, text);
    });
    // Enter that confirms a Chinese IME candidate must not send the message.
    ui.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.isComposing || event.keyCode === 229)) {
        event.preventDefault();
      }
    });
    ui.newChat.addEventListener("click", startNewConversation);
    connect();
  }

  start();
})();
