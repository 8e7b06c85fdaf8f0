// 借呗助手 人工客服工作台: the agent desk's console (no framework).
//
// Talks only to the desk API of this page server (/agent/api/, JSON; the
// session cookie is HttpOnly, every change carries the X-CSRF-Token header).
// The queue is polled every second; an open case follows its transcript and
// status live over server-sent events (cases/{id}/stream).
//
// Everything a user, an agent or the bot wrote is put on the page as text
// (textContent, createElement): never parsed as HTML.
"use strict";

(function () {
  const API = "api/";
  const POLL_MS = 1000;
  const STREAM_RETRY_MS = 3000;
  const TOAST_MS = 4000;
  // Only a hint that a session may exist (the cookie itself is HttpOnly): on a
  // fresh page without it the sign-in form shows at once, with no 401 asked for.
  const HINT_KEY = "jiebei_desk_hint";

  // Cause codes of the diagnosis (actions/diagnosis/rules.yml) in Chinese.
  const CAUSES = {
    account_frozen: "支付宝账户被冻结",
    account_restricted: "支付宝账户受限",
    account_not_activated: "支付宝账户未激活",
    real_name_incomplete: "实名认证未完成",
    no_bank_card: "未绑定本人银行卡",
    poor_credit_record: "有逾期等不良信用记录",
    high_risk_region: "所在地区风险较高",
    frequent_credit_inquiries: "近期频繁申请贷款",
    high_debt_ratio: "负债率偏高",
    low_sesame_score: "芝麻分偏低",
    identity_profile_incomplete: "身份信息（职业/学历）未完善",
    low_activity: "支付宝使用不活跃",
    app_outdated: "支付宝版本过旧",
  };
  const STEP_ANSWERS = { done: "已完成", cannot: "无法完成", acknowledged: "已知悉" };
  const RECHECKS = { confirmed: "复查已确认解决", pending: "复查仍显示该原因", noted: "未能复查（以用户所述为准）" };
  const FACTS = {
    account_status: "账户状态",
    real_name_verified: "实名认证",
    phone_verified: "手机号验证",
    bank_cards: "本人银行卡数",
    sesame_score: "芝麻分",
    payments_last_30d: "近30天支付笔数",
    offline_payments_last_30d: "近30天线下支付笔数",
    identity_profile_complete: "身份信息完善",
    overdue_count: "逾期记录数",
    high_risk_region: "高风险地区",
    credit_inquiries_last_30d: "近30天贷款申请次数",
    debt_ratio: "负债率",
    app_version_outdated: "支付宝版本过旧",
  };
  const ACCOUNT_STATUS = { normal: "正常", not_activated: "未激活", restricted: "受限", frozen: "冻结" };
  const FACT_SOURCES = { store: "账户系统", user: "用户自述", mixed: "账户系统 + 用户自述" };
  const CHANNELS = { socketio: "网页", rest: "REST", wecom: "企业微信", wechat: "公众号", official_account: "公众号" };
  const STATUSES = { waiting: "等待接入", active: "处理中", resolved: "已结束" };

  const $ = (id) => document.getElementById(id);
  const el = {};
  [
    "login-view", "login-form", "login-username", "login-password", "login-error",
    "login-submit", "login-notice", "desk-view", "me-name", "connection", "logout",
    "mine-list", "mine-empty", "mine-count", "queue-list", "queue-empty", "queue-count",
    "queue-error", "case-placeholder", "case-panel", "back", "case-title", "case-state",
    "claim", "unclaim", "transfer-open", "resolve-open", "case-error", "transfer-form",
    "transfer-to", "transfer-submit", "transfer-cancel", "resolve-form", "resolve-note",
    "resolve-submit", "resolve-cancel", "transcript", "composer", "reply", "send",
    "readonly-note", "scam-banner", "summary-list", "steps-list", "steps-empty",
    "facts-list", "facts-empty", "toast", "staff-links",
  ].forEach((id) => { el[id] = $(id); });

  const state = {
    me: null, // {username, display_name, role, csrf_token}
    agents: {}, // username -> display_name
    waiting: [],
    mine: [],
    listedAt: 0, // performance.now() of the last queue answer
    polling: null,
    pollBusy: false,
    pollPromise: null,
    pollAgain: false,
    current: null, // {id, row, summary, seen: Set, stream, retry}
    toastTimer: null,
  };

  // --- the API -------------------------------------------------------------

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (method !== "GET") {
      headers["Content-Type"] = "application/json";
      if (state.me) headers["X-CSRF-Token"] = state.me.csrf_token;
    }
    let response;
    try {
      response = await fetch(API + path, {
        method: method,
        headers: headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "same-origin",
        cache: "no-store",
      });
    } catch (error) {
      return { status: 0, ok: false, data: null, headers: null };
    }
    let data = null;
    try {
      data = await response.json();
    } catch (error) {
      data = null;
    }
    if (response.status === 401 && path !== "login" && state.me) {
      signedOut("登录已过期，请重新登录。");
    }
    return { status: response.status, ok: response.ok, data: data, headers: response.headers };
  }

  function errorText(result, what) {
    if (result.status === 0) return what + "失败：无法连接服务器，请检查网络后重试。";
    const detail = result.data && typeof result.data.error === "string" ? result.data.error : "";
    return what + "失败" + (detail ? "：" + detail : "（" + result.status + "）");
  }

  function agentName(username) {
    if (!username) return "";
    return state.agents[username] || username;
  }

  // --- sign-in and sign-out ------------------------------------------------

  function showLogin(notice) {
    stopPolling();
    closeCase();
    state.me = null;
    el["desk-view"].hidden = true;
    el["login-view"].hidden = false;
    el["login-notice"].textContent = notice || "";
    el["login-notice"].hidden = !notice;
    el["login-password"].value = "";
    el["login-submit"].disabled = false;
    el["login-username"].focus();
  }

  function signedOut(notice) {
    try { localStorage.removeItem(HINT_KEY); } catch (error) { /* private mode */ }
    showLogin(notice);
  }

  function showDesk(me) {
    state.me = me;
    try { localStorage.setItem(HINT_KEY, "1"); } catch (error) { /* private mode */ }
    state.agents[me.username] = me.display_name;
    el["me-name"].textContent = me.display_name + "（" + me.username + "）";
    // Supervisors also have the insights and the review queue (insights.html, review.html).
    el["staff-links"].hidden = me.role !== "supervisor";
    el["login-view"].hidden = true;
    el["desk-view"].hidden = false;
    el["login-error"].hidden = true;
    loadAgents();
    startPolling();
  }

  async function onLogin(event) {
    event.preventDefault();
    const username = el["login-username"].value.trim();
    const password = el["login-password"].value;
    const error = el["login-error"];
    if (!username || !password) {
      error.textContent = "请输入账号和密码。";
      error.hidden = false;
      return;
    }
    el["login-submit"].disabled = true;
    const result = await api("POST", "login", { username: username, password: password });
    el["login-submit"].disabled = false;
    if (result.ok && result.data) {
      el["login-password"].value = "";
      el["login-notice"].hidden = true;
      showDesk(result.data);
      return;
    }
    if (result.status === 401) {
      error.textContent = "账号或密码错误。";
    } else if (result.status === 429) {
      const wait = Number(result.headers && result.headers.get("Retry-After"));
      error.textContent = "登录尝试次数过多，" +
        (wait > 0 ? "请 " + formatDuration(wait) + " 后再试。" : "请稍后再试。");
    } else {
      error.textContent = errorText(result, "登录");
    }
    error.hidden = false;
    el["login-password"].select();
  }

  async function onLogout() {
    el["logout"].disabled = true;
    // Nothing asks the server after the session ends (no 401 to log).
    stopPolling();
    closeCase();
    if (state.pollPromise) await state.pollPromise;
    await api("POST", "logout", {});
    el["logout"].disabled = false;
    signedOut("您已退出登录。");
  }

  async function loadAgents() {
    const result = await api("GET", "agents");
    const list = result.ok && result.data
      ? (Array.isArray(result.data) ? result.data : result.data.agents || [])
      : [];
    list.forEach((agent) => { state.agents[agent.username] = agent.display_name; });
    return list;
  }

  // --- the queue and my cases ----------------------------------------------

  function startPolling() {
    stopPolling();
    refreshLists();
    state.polling = setInterval(() => {
      refreshLists();
      tickWaits();
    }, POLL_MS);
  }

  function stopPolling() {
    if (state.polling) clearInterval(state.polling);
    state.polling = null;
  }

  // `changed`: after a change of ours, an answer already on its way may be
  // older than the change, so the lists are asked for once more after it.
  function refreshLists(changed) {
    if (!state.me) return state.pollPromise;
    if (state.pollBusy) {
      if (changed) state.pollAgain = true;
      return state.pollPromise;
    }
    state.pollBusy = true;
    state.pollAgain = false;
    state.pollPromise = pollLists().finally(() => {
      state.pollBusy = false;
      if (state.pollAgain) refreshLists(false);
    });
    return state.pollPromise;
  }

  async function pollLists() {
    try {
      const [waiting, active] = await Promise.all([
        api("GET", "cases?status=waiting"),
        api("GET", "cases?status=active"),
      ]);
      if (!state.me) return;
      const online = waiting.ok && active.ok;
      el["connection"].textContent = online ? "" : "连接中断，正在重试…";
      el["connection"].classList.toggle("offline", !online);
      if (waiting.ok && waiting.data) {
        state.waiting = waiting.data.cases || [];
        state.listedAt = performance.now();
      }
      if (active.ok && active.data) {
        state.mine = (active.data.cases || []).filter((row) => row.agent_id === state.me.username);
      }
      renderLists();
    } catch (error) {
      // A failed answer is shown by the next poll; never an unhandled rejection.
    }
  }

  function renderLists() {
    const currentId = state.current ? state.current.id : null;
    reconcile(el["queue-list"], state.waiting, (row) => queueItem(row, currentId));
    reconcile(el["mine-list"], state.mine, (row) => mineItem(row, currentId));
    el["queue-count"].textContent = String(state.waiting.length);
    el["mine-count"].textContent = String(state.mine.length);
    el["queue-empty"].hidden = state.waiting.length > 0;
    el["mine-empty"].hidden = state.mine.length > 0;
    tickWaits();
  }

  // Keeps one <li> per case (updated in place, moved when the order changes),
  // so that a refresh every second never swaps an element under the pointer.
  function reconcile(list, rows, build) {
    const existing = new Map();
    Array.from(list.children).forEach((item) => existing.set(item.dataset.caseId, item));
    const keep = new Set();
    rows.forEach((row, index) => {
      const key = String(row.case_id);
      keep.add(key);
      const fresh = build(row);
      let item = existing.get(key);
      if (item && item.dataset.signature === fresh.dataset.signature) {
        item.dataset.created = fresh.dataset.created;
        item.dataset.waitBase = fresh.dataset.waitBase;
        item.classList.toggle("selected", fresh.classList.contains("selected"));
      } else {
        if (item) item.replaceWith(fresh);
        item = fresh;
      }
      if (list.children[index] !== item) list.insertBefore(item, list.children[index] || null);
    });
    existing.forEach((item, key) => { if (!keep.has(key)) item.remove(); });
  }

  function caseItem(row, currentId) {
    const item = document.createElement("li");
    item.className = "case-item" + (row.scam ? " scam" : "") +
      (row.case_id === currentId ? " selected" : "");
    item.dataset.caseId = String(row.case_id);
    item.dataset.waitBase = String(Number(row.wait_seconds) || 0);
    const open = document.createElement("button");
    open.type = "button";
    open.className = "case-open";
    open.addEventListener("click", () => openCase(row.case_id));
    const top = document.createElement("span");
    top.className = "case-line";
    if (row.scam) {
      const badge = document.createElement("span");
      badge.className = "scam-badge";
      badge.textContent = "⚠ 疑似诈骗";
      top.appendChild(badge);
    }
    const problem = document.createElement("span");
    problem.className = "case-problem";
    problem.textContent = row.problem || "（用户未描述问题）";
    top.appendChild(problem);
    const meta = document.createElement("span");
    meta.className = "case-meta";
    meta.textContent = [
      row.account_id ? "账户 " + row.account_id : "匿名用户",
      CHANNELS[row.channel] || row.channel || "",
      "#" + row.case_id,
    ].filter(Boolean).join(" · ");
    open.append(top, meta);
    item.appendChild(open);
    item.dataset.signature = JSON.stringify([
      row.problem, row.scam, row.account_id, row.channel, row.case_id === currentId,
    ]);
    return item;
  }

  function queueItem(row, currentId) {
    const item = caseItem(row, currentId);
    const side = document.createElement("span");
    side.className = "case-side";
    const wait = document.createElement("span");
    wait.className = "wait";
    side.appendChild(wait);
    const claim = document.createElement("button");
    claim.type = "button";
    claim.className = "primary small claim";
    claim.textContent = "接入";
    claim.addEventListener("click", () => claimCase(row.case_id));
    side.appendChild(claim);
    item.appendChild(side);
    return item;
  }

  function mineItem(row, currentId) {
    const item = caseItem(row, currentId);
    const since = document.createElement("span");
    since.className = "case-side since";
    since.textContent = row.claimed_at ? "接入于 " + clock(row.claimed_at) : "处理中";
    item.appendChild(since);
    item.dataset.signature += since.textContent;
    return item;
  }

  // The waits tick between two answers of the server, from its wait_seconds.
  function tickWaits() {
    const since = state.listedAt ? (performance.now() - state.listedAt) / 1000 : 0;
    el["queue-list"].querySelectorAll(".case-item").forEach((item) => {
      const seconds = Number(item.dataset.waitBase) + since;
      const wait = item.querySelector(".wait");
      if (wait) wait.textContent = "已等待 " + formatDuration(seconds);
      item.classList.toggle("long-wait", seconds >= 300);
    });
  }

  // --- one case -------------------------------------------------------------

  async function claimCase(caseId) {
    const result = await api("POST", "cases/" + encodeURIComponent(caseId) + "/claim", {});
    if (result.ok) {
      showToast("已接入会话 #" + caseId);
      state.waiting = state.waiting.filter((row) => row.case_id !== caseId);
      renderLists();
      await openCase(caseId);
      refreshLists(true);
      return;
    }
    if (result.status === 409) {
      const holder = result.data && result.data.agent_id;
      const message = holder
        ? "已被 " + agentName(holder) + " 接入"
        : errorText(result, "接入");
      showToast(message, true);
      if (state.current && state.current.id === caseId) showCaseError(message);
    } else if (result.status !== 401) {
      showToast(errorText(result, "接入"), true);
    }
    refreshLists(true);
  }

  async function openCase(caseId) {
    if (!state.current || state.current.id !== caseId) {
      closeCase();
      state.current = {
        id: caseId, row: null, summary: {}, seen: new Set(), lastId: 0, stream: null, retry: null,
      };
      el["transcript"].replaceChildren();
      el["reply"].value = "";
    }
    const current = state.current;
    document.body.classList.add("show-case");
    el["case-placeholder"].hidden = true;
    el["case-panel"].hidden = false;
    hideForms();
    showCaseError("");
    const result = await api("GET", "cases/" + encodeURIComponent(caseId));
    if (state.current !== current) return;
    if (!result.ok || !result.data) {
      if (result.status === 403) {
        showCaseError("这个会话正由其他坐席处理，您无法查看。");
      } else if (result.status !== 401) {
        showCaseError(errorText(result, "打开会话"));
      }
      renderCase();
      return;
    }
    current.row = result.data.case;
    current.summary = parseSummary(current.row && current.row.summary);
    (result.data.transcript || []).forEach(addEntry);
    renderCase();
    renderLists();
    followStream(current);
    scrollToEnd(true);
    if (isMine(current.row)) el["reply"].focus();
  }

  function closeCase() {
    const current = state.current;
    if (current) {
      if (current.stream) current.stream.close();
      if (current.retry) clearTimeout(current.retry);
    }
    state.current = null;
    document.body.classList.remove("show-case");
    el["case-panel"].hidden = true;
    el["case-placeholder"].hidden = false;
    el["transcript"].replaceChildren();
    hideForms();
  }

  function stopStream(current) {
    if (current && current.stream) {
      current.stream.close();
      current.stream = null;
    }
  }

  function followStream(current) {
    stopStream(current);
    if (!current.row || !canFollow(current.row)) return;
    // From the last event shown: the stream sends only what came after it.
    const stream = new EventSource(
      API + "cases/" + encodeURIComponent(current.id) + "/stream?after=" + current.lastId
    );
    current.stream = stream;
    stream.addEventListener("transcript", (event) => {
      if (state.current !== current) return;
      const entry = parseJSON(event.data);
      if (entry) {
        const atEnd = nearEnd();
        addEntry(entry);
        scrollToEnd(atEnd);
      }
    });
    stream.addEventListener("status", (event) => {
      if (state.current !== current) return;
      const row = parseJSON(event.data);
      if (row) applyStatus(current, row);
    });
    stream.addEventListener("end", () => {
      // The session ended (signed out elsewhere, or idle too long).
      stream.close();
      signedOut("登录已过期，请重新登录。");
    });
    stream.addEventListener("open", () => {
      el["connection"].textContent = "";
      el["connection"].classList.remove("offline");
    });
    stream.addEventListener("error", (event) => {
      if (state.current !== current) return;
      // The server's own "error" event (the case store unreachable) has data.
      if (event.data) {
        const problem = parseJSON(event.data);
        showCaseError("实时更新暂时中断：" + ((problem && problem.error) || "服务器错误") + "，正在重试…");
        return;
      }
      // A dropped connection: the browser reconnects by itself (Last-Event-ID).
      // A refused one is closed for good: look at the case again a little later.
      if (stream.readyState !== EventSource.CLOSED) return;
      current.stream = null;
      current.retry = setTimeout(() => {
        if (state.current === current) openCase(current.id);
      }, STREAM_RETRY_MS);
    });
  }

  function applyStatus(current, row) {
    const before = current.row || {};
    const wasMine = isMine(before);
    current.row = Object.assign({}, before, row);
    if (row.summary !== undefined) current.summary = parseSummary(row.summary);
    renderCase();
    if (wasMine && !isMine(current.row)) {
      if (current.row.status === "resolved") {
        showToast("会话已结束");
      } else if (current.row.status === "active" && current.row.agent_id) {
        showToast("会话已转给 " + agentName(current.row.agent_id));
      } else {
        showToast("会话已退回队列");
      }
    }
    if (!canFollow(current.row)) stopStream(current);
    refreshLists(true);
  }

  function isMine(row) {
    return Boolean(row && state.me && row.status === "active" && row.agent_id === state.me.username);
  }

  // Waiting cases and my own active ones are followed live, and a
  // supervisor follows any active one; a resolved case is not followed.
  function canFollow(row) {
    if (row.status === "waiting" || isMine(row)) return true;
    return row.status === "active" && Boolean(state.me) && state.me.role === "supervisor";
  }

  function renderCase() {
    const current = state.current;
    if (!current) return;
    const row = current.row || {};
    const summary = current.summary || {};
    const mine = isMine(row);
    el["case-title"].textContent = "会话 #" + current.id +
      (row.account_id || summary.account_id ? " · 账户 " + (row.account_id || summary.account_id) : " · 匿名用户");
    const parts = [STATUSES[row.status] || row.status || ""];
    if (row.status === "active" && row.agent_id) parts.push("坐席 " + (row.agent_name || agentName(row.agent_id)));
    if (row.channel) parts.push("渠道 " + (CHANNELS[row.channel] || row.channel));
    if (row.created_at) parts.push("创建于 " + clock(row.created_at));
    el["case-state"].textContent = parts.filter(Boolean).join(" · ");
    el["case-state"].dataset.status = row.status || "";

    el["claim"].hidden = row.status !== "waiting";
    el["unclaim"].hidden = !mine;
    el["transfer-open"].hidden = !mine;
    el["resolve-open"].hidden = !mine;
    el["composer"].hidden = !mine;
    if (!mine) hideForms();
    const note = el["readonly-note"];
    if (row.status === "waiting") {
      note.textContent = "用户正在等待人工客服，接入后即可回复。";
    } else if (row.status === "active" && !mine) {
      note.textContent = "此会话由 " + (row.agent_name || agentName(row.agent_id)) + " 处理中，您只能查看。";
    } else if (row.status === "resolved") {
      note.textContent = "会话已结束，已交还机器人。" + (row.resolution ? "处理结果：" + row.resolution : "");
    } else {
      note.textContent = "";
    }
    note.hidden = mine || !note.textContent;
    renderSummary(row, summary);
  }

  function renderSummary(row, summary) {
    const scam = Boolean(row.scam || summary.scam_reported);
    el["scam-banner"].hidden = !scam;
    el["case-panel"].classList.toggle("scam", scam);
    const causes = Array.isArray(summary.causes) ? summary.causes : [];
    const current = summary.current_cause || summary.current_finding;
    const fields = [
      ["账户", row.account_id || summary.account_id || "匿名（未关联账户）"],
      ["用户问题", row.problem || summary.problem || "（未说明）"],
      ["诊断原因", causes.length ? causes.map(causeName).join("；") : "无"],
      ["当前步骤", current ? causeName(current) : "无"],
      ["事实来源", FACT_SOURCES[summary.facts_source] || summary.facts_source || "无"],
      ["疑似诈骗", scam ? "是" : "否"],
      ["会话 ID", row.conversation_id || summary.conversation_id || ""],
    ];
    if (row.resolution) fields.push(["处理结果", row.resolution]);
    fillList(el["summary-list"], fields);

    const steps = Array.isArray(summary.steps_tried) ? summary.steps_tried : [];
    const stepItems = steps.map((step) => {
      const item = document.createElement("li");
      const name = document.createElement("strong");
      name.textContent = causeName(step && step.code);
      item.appendChild(name);
      const answer = step && (STEP_ANSWERS[step.answer] || step.answer);
      const recheck = step && (RECHECKS[step.recheck] || step.recheck);
      item.appendChild(document.createTextNode(
        "：" + (answer || "未回答") + (recheck ? "（" + recheck + "）" : "")
      ));
      return item;
    });
    el["steps-list"].replaceChildren(...stepItems);
    el["steps-empty"].hidden = stepItems.length > 0;

    const facts = summary.facts && typeof summary.facts === "object" ? summary.facts : {};
    const factRows = Object.keys(facts)
      .filter((name) => facts[name] !== null && facts[name] !== undefined)
      .map((name) => [FACTS[name] || name, factValue(name, facts[name])]);
    fillList(el["facts-list"], factRows);
    el["facts-empty"].hidden = factRows.length > 0;
  }

  function fillList(list, rows) {
    const nodes = [];
    rows.forEach(([term, value]) => {
      const dt = document.createElement("dt");
      dt.textContent = term;
      const dd = document.createElement("dd");
      dd.textContent = String(value);
      nodes.push(dt, dd);
    });
    list.replaceChildren(...nodes);
  }

  function causeName(code) {
    if (!code) return "未知";
    return CAUSES[code] ? CAUSES[code] + "（" + code + "）" : String(code);
  }

  function factValue(name, value) {
    if (typeof value === "boolean") return value ? "是" : "否";
    if (name === "account_status") return ACCOUNT_STATUS[value] || String(value);
    if (typeof value === "object") return JSON.stringify(value);
    return String(value);
  }

  function parseSummary(summary) {
    if (!summary) return {};
    if (typeof summary === "string") return parseJSON(summary) || {};
    return typeof summary === "object" ? summary : {};
  }

  function parseJSON(text) {
    try {
      return JSON.parse(text);
    } catch (error) {
      return null;
    }
  }

  // --- the transcript -------------------------------------------------------

  function entryKey(entry) {
    return entry.id !== undefined && entry.id !== null
      ? String(entry.id)
      : [entry.at, entry.from, entry.text].join("|");
  }

  function addEntry(entry) {
    const current = state.current;
    if (!current || !entry || typeof entry !== "object") return;
    const key = entryKey(entry);
    if (current.seen.has(key)) return;
    current.seen.add(key);
    if (typeof entry.id === "number" && entry.id > current.lastId) current.lastId = entry.id;
    const item = entryItem(entry);
    item.dataset.key = key;
    item.dataset.order = String(typeof entry.id === "number" ? entry.id : "");
    // In event order even when the stream and the case's answer overlap.
    const list = el["transcript"];
    let before = null;
    if (typeof entry.id === "number") {
      before = Array.from(list.children).find(
        (other) => other.dataset.order !== "" && Number(other.dataset.order) > entry.id
      ) || null;
    }
    list.insertBefore(item, before);
  }

  function entryItem(entry) {
    const from = entry.from === "user" || entry.from === "agent" ? entry.from : "bot";
    const item = document.createElement("li");
    item.className = "entry from-" + from;
    if (from === "agent" && state.me && entry.agent_id === state.me.username) {
      item.classList.add("mine");
    }
    const meta = document.createElement("div");
    meta.className = "entry-meta";
    const who = document.createElement("span");
    who.className = "who";
    if (from === "user") {
      who.textContent = "用户";
    } else if (from === "agent") {
      who.textContent = "人工客服 · " + (entry.agent_name || agentName(entry.agent_id) || "");
    } else {
      who.textContent = "机器人";
    }
    meta.appendChild(who);
    if (entry.at) {
      const time = document.createElement("time");
      time.dateTime = String(entry.at);
      time.textContent = clock(entry.at);
      meta.appendChild(time);
    }
    if (from === "user" && entry.intent) {
      const intent = document.createElement("span");
      intent.className = "intent";
      intent.textContent = "意图 " + entry.intent;
      meta.appendChild(intent);
    }
    const text = document.createElement("div");
    text.className = "entry-text";
    text.textContent = typeof entry.text === "string" && entry.text !== "" ? entry.text : "（无文字内容）";
    item.append(meta, text);
    return item;
  }

  function nearEnd() {
    const list = el["transcript"];
    return list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  }

  function scrollToEnd(force) {
    if (force) el["transcript"].scrollTop = el["transcript"].scrollHeight;
  }

  // --- the agent's actions --------------------------------------------------

  async function sendReply(event) {
    if (event) event.preventDefault();
    const current = state.current;
    const text = el["reply"].value.trim();
    if (!current || !text || el["send"].disabled) return;
    el["send"].disabled = true;
    const result = await api("POST", "cases/" + encodeURIComponent(current.id) + "/messages", { text: text });
    el["send"].disabled = false;
    if (state.current !== current) return;
    if (result.ok) {
      // Keep whatever was typed meanwhile beyond the sent text.
      if (el["reply"].value.trim() === text) el["reply"].value = "";
      showCaseError("");
      const entry = result.data && (result.data.entry || (result.data.from ? result.data : null));
      if (entry) addEntry(entry);
      scrollToEnd(true);
      el["reply"].focus();
      return;
    }
    if (result.status === 401) return;
    if (result.status === 403) {
      showCaseError("发送失败：您已不是这个会话的处理人。");
      openCase(current.id);
    } else if (result.status === 409) {
      showCaseError("发送失败：会话未接入或已结束。");
      openCase(current.id);
    } else {
      showCaseError(errorText(result, "发送") + "（内容已保留，可重试）");
    }
  }

  function onReplyKey(event) {
    // Enter sends, Shift+Enter is a new line; Enter that confirms an input
    // method's candidate (Chinese IME) is neither.
    if (event.key !== "Enter" || event.shiftKey || event.isComposing || event.keyCode === 229) return;
    event.preventDefault();
    sendReply(null);
  }

  async function caseAction(path, body, what, done) {
    const current = state.current;
    if (!current) return;
    const result = await api("POST", "cases/" + encodeURIComponent(current.id) + "/" + path, body);
    if (state.current !== current) return;
    if (result.ok) {
      // Not mine any more (resolved, back in the queue or transferred).
      state.mine = state.mine.filter((row) => row.case_id !== current.id);
      done(result.data);
      renderLists();
      refreshLists(true);
      return;
    }
    if (result.status === 401) return;
    showCaseError(errorText(result, what));
    openCase(current.id);
  }

  function onUnclaim() {
    caseAction("unclaim", {}, "退回队列", () => {
      showToast("已退回队列");
      closeCase();
    });
  }

  async function onTransferOpen() {
    hideForms();
    const agents = await loadAgents();
    const others = agents.filter((agent) => state.me && agent.username !== state.me.username);
    const select = el["transfer-to"];
    select.replaceChildren(...others.map((agent) => {
      const option = document.createElement("option");
      option.value = agent.username;
      option.textContent = agent.display_name + "（" + agent.username + "）";
      return option;
    }));
    if (!others.length) {
      showCaseError("没有可以转接的其他坐席。");
      return;
    }
    el["transfer-form"].hidden = false;
    select.focus();
  }

  function onTransfer(event) {
    event.preventDefault();
    const to = el["transfer-to"].value;
    if (!to) return;
    const current = state.current;
    if (current) stopStream(current);
    caseAction("transfer", { to: to }, "转接", () => {
      showToast("已转接给 " + agentName(to));
      closeCase();
    });
  }

  function onResolveOpen() {
    hideForms();
    el["resolve-form"].hidden = false;
    el["resolve-note"].focus();
  }

  function onResolve(event) {
    event.preventDefault();
    const note = el["resolve-note"].value.trim();
    const current = state.current;
    // Stop following first: the stream ends with the case.
    if (current) stopStream(current);
    el["resolve-submit"].disabled = true;
    caseAction("resolve", note ? { note: note } : {}, "结束会话", () => {
      showToast("会话已结束，已交还机器人");
      closeCase();
    }).finally(() => { el["resolve-submit"].disabled = false; });
  }

  function hideForms() {
    el["transfer-form"].hidden = true;
    el["resolve-form"].hidden = true;
    el["resolve-note"].value = "";
  }

  function showCaseError(message) {
    el["case-error"].textContent = message;
    el["case-error"].hidden = !message;
  }

  function showToast(message, isError) {
    const toast = el["toast"];
    toast.textContent = message;
    toast.classList.toggle("error", Boolean(isError));
    toast.hidden = false;
    clearTimeout(state.toastTimer);
    state.toastTimer = setTimeout(() => { toast.hidden = true; }, TOAST_MS);
  }

  // --- formatting -----------------------------------------------------------

  function formatDuration(seconds) {
    const total = Math.max(0, Math.floor(seconds));
    const hours = Math.floor(total / 3600);
    const minutes = Math.floor((total % 3600) / 60);
    const rest = total % 60;
    if (hours) return hours + "小时" + String(minutes).padStart(2, "0") + "分";
    if (minutes) return minutes + "分" + String(rest).padStart(2, "0") + "秒";
    return rest + "秒";
  }

  function clock(iso) {
    const moment = new Date(iso);
    if (Number.isNaN(moment.getTime())) return String(iso);
    return moment.toLocaleTimeString("zh-CN", { hour12: false });
  }

  // --- start ----------------------------------------------------------------

  el["login-form"].addEventListener("submit", onLogin);
  el["logout"].addEventListener("click", onLogout);
  el["claim"].addEventListener("click", () => { if (state.current) claimCase(state.current.id); });
  el["unclaim"].addEventListener("click", onUnclaim);
  el["transfer-open"].addEventListener("click", onTransferOpen);
  el["transfer-form"].addEventListener("submit", onTransfer);
  el["transfer-cancel"].addEventListener("click", hideForms);
  el["resolve-open"].addEventListener("click", onResolveOpen);
  el["resolve-form"].addEventListener("submit", onResolve);
  el["resolve-cancel"].addEventListener("click", hideForms);
  el["composer"].addEventListener("submit", sendReply);
  el["reply"].addEventListener("keydown", onReplyKey);
  el["back"].addEventListener("click", () => { closeCase(); renderLists(); });

  async function start() {
    let hint = null;
    try { hint = localStorage.getItem(HINT_KEY); } catch (error) { hint = null; }
    if (!hint) {
      showLogin("");
      return;
    }
    const result = await api("GET", "me");
    if (result.ok && result.data) {
      showDesk(result.data);
    } else {
      signedOut(result.status === 401 ? "" : errorText(result, "连接"));
    }
  }

  start();
})();
