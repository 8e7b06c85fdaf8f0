// 借呗助手: what the supervisors' pages (数据洞察, 待标注) share.
//
// The desk's sign-in (/agent/, its session cookie) is the only sign-in: a page
// asks GET /agent/api/me first and goes to /agent/ when there is no session
// (at once when the console's sign-in hint is missing);
// an agent without the supervisor role is told so and offered the desk.
// Everything user-written is put on the page as text (textContent), never HTML.
"use strict";

window.Staff = (function () {
  const API = "/agent/api/";
  const DESK = "/agent/";
  // Set by the desk's console (agent.js) while someone is signed in there (the
  // cookie itself is HttpOnly): without it the page goes to the sign-in at once,
  // with no 401 asked for.
  const HINT_KEY = "jiebei_desk_hint";
  let me = null; // {username, display_name, role, csrf_token}

  // One JSON call of the desk API: {status, ok, data}; status 0 if unreachable.
  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (method !== "GET") {
      headers["Content-Type"] = "application/json";
      if (me) headers["X-CSRF-Token"] = me.csrf_token;
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
      return { status: 0, ok: false, data: null };
    }
    let data = null;
    try {
      data = await response.json();
    } catch (error) {
      data = null;
    }
    if (response.status === 401) {
      window.location.assign(DESK);
    }
    return { status: response.status, ok: response.ok, data: data };
  }

  function errorText(result, what) {
    if (result.status === 0) return what + "失败：无法连接服务器，请稍后重试。";
    const detail = result.data && typeof result.data.error === "string" ? result.data.error : "";
    return what + "失败" + (detail ? "：" + detail : "（" + result.status + "）");
  }

  function showError(text, withDeskLink) {
    const banner = document.getElementById("page-error");
    banner.textContent = text;
    if (withDeskLink) {
      banner.append(" ");
      const link = document.createElement("a");
      link.href = DESK;
      link.textContent = "返回工作台";
      banner.append(link);
    }
    banner.hidden = false;
  }

  function hideError() {
    document.getElementById("page-error").hidden = true;
  }

  // The signed-in supervisor, or null (redirected to the desk's sign-in, or
  // told that the page is for supervisors).
  async function signIn() {
    let hinted = true;
    try {
      hinted = window.localStorage.getItem(HINT_KEY) === "1";
    } catch (error) {
      hinted = true; // no storage (private mode): ask the server
    }
    if (!hinted) {
      window.location.assign(DESK);
      return null;
    }
    const result = await api("GET", "me");
    if (result.status === 401) return null;
    if (!result.ok || !result.data) {
      showError(errorText(result, "读取登录状态"), true);
      return null;
    }
    me = result.data;
    document.getElementById("me-name").textContent = me.display_name || me.username;
    if (me.role !== "supervisor") {
      showError("此页面仅供主管使用：当前账号「" + (me.display_name || me.username) + "」是坐席。", true);
      return null;
    }
    document.getElementById("content").hidden = false;
    return me;
  }

  // An element with text; never parsed as HTML.
  function make(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function percent(value) {
    if (typeof value !== "number" || !isFinite(value)) return "—";
    return (value * 100).toFixed(1) + "%";
  }

  function duration(seconds) {
    if (typeof seconds !== "number" || !isFinite(seconds)) return "—";
    if (seconds < 60) return Math.round(seconds) + " 秒";
    if (seconds < 3600) return (seconds / 60).toFixed(1) + " 分钟";
    return (seconds / 3600).toFixed(1) + " 小时";
  }

  function localTime(iso) {
    const moment = new Date(iso);
    if (isNaN(moment.getTime())) return "";
    return moment.toLocaleString("zh-CN", { hour12: false });
  }

  let toastTimer = null;
  function toast(text, isError) {
    const node = document.getElementById("toast");
    if (!node) return;
    node.textContent = text;
    node.className = "toast" + (isError ? " error" : "");
    node.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { node.hidden = true; }, 4000);
  }

  return {
    api: api,
    errorText: errorText,
    showError: showError,
    hideError: hideError,
    signIn: signIn,
    make: make,
    percent: percent,
    duration: duration,
    localTime: localTime,
    toast: toast,
  };
})();
