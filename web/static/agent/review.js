// 借呗助手 待标注: the review queue of GET /agent/api/review (user messages the
// NLU was unsure of, most frequent first), a label picker per message saved
// with POST /agent/api/review/{id}, and the before/after accuracy of
// GET /agent/api/review/summary. User text is shown as text only.
"use strict";

(function () {
  const S = window.Staff;
  const LIMIT = 200;

  // What each label means (shared/docs/intents.md), to pick the right one.
  const MEANINGS = {
    jiebei_entry_missing: "借呗入口不见了",
    jiebei_cannot_open: "开通不了借呗",
    jiebei_closed: "借呗被关闭/冻结",
    jiebei_cannot_borrow: "借不出钱",
    jiebei_quota: "额度",
    jiebei_repayment: "还款",
    jiebei_early_repayment: "提前还款",
    jiebei_term: "期限/分期",
    jiebei_overdue: "逾期",
    jiebei_interest: "利息",
    jiebei_disbursement: "放款到账",
    jiebei_wangshangdai: "网商贷",
    jiebei_vs_huabei: "借呗和花呗",
    jiebei_self_close: "自己关闭借呗",
    credit_score: "芝麻分/征信",
    account_identity: "实名/证件/手机号/银行卡",
    jiebei_how_to_borrow: "怎么借钱",
    jiebei_records: "账单/记录/证明",
    out_of_scope: "其他无关问题",
    greet: "打招呼",
    goodbye: "再见",
    thank: "感谢",
    affirm: "肯定",
    deny: "否定",
    inform: "告知账户情况",
    request_human: "转人工",
    bot_challenge: "问是不是机器人",
    report_scam: "报告诈骗",
  };
  const REASONS = {
    low_confidence: "把握低",
    fallback: "兜底",
    did_you_mean: "「您是想问」",
    before_handoff: "随后转人工",
  };
  const NOISE_TEXT = "不是问题 / 噪声";

  const state = { labels: [], noise: null, saving: {} };

  function labelText(label) {
    if (label === state.noise) return NOISE_TEXT;
    const bare = label.indexOf("/") >= 0 ? label.slice(label.indexOf("/") + 1) : label;
    const meaning = MEANINGS[bare] || MEANINGS[label];
    return meaning ? label + " · " + meaning : label;
  }

  async function loadSummary() {
    const result = await S.api("GET", "review/summary");
    if (!result.ok || !result.data) {
      if (result.status !== 401) S.showError(S.errorText(result, "读取标注统计"), result.status === 403);
      return;
    }
    const summary = result.data;
    document.getElementById("reviewed-count").textContent = String(summary.reviewed);
    document.getElementById("reviewed-note").textContent =
      summary.reviewed > summary.scored ? (summary.reviewed - summary.scored) + " 条标为噪声（不计入准确率）" : "";
    accuracy("accuracy-before", summary.before);
    accuracy("accuracy-after", summary.after);
  }

  function accuracy(id, figure) {
    const value = document.getElementById(id);
    const note = document.getElementById(id + "-note");
    if (!figure) {
      value.textContent = "—";
      note.textContent = "";
      return;
    }
    value.textContent = S.percent(figure.accuracy);
    if (figure.error) {
      note.textContent = figure.error;
    } else {
      note.textContent = figure.total ? figure.correct + " / " + figure.total + " 条判断正确" : "暂无已标注的问题";
    }
  }

  async function loadQueue() {
    const result = await S.api("GET", "review?limit=" + LIMIT);
    if (!result.ok || !result.data) {
      if (result.status !== 401) S.showError(S.errorText(result, "读取待标注消息"), result.status === 403);
      return;
    }
    state.labels = result.data.labels || [];
    state.noise = result.data.noise_label || null;
    const body = document.getElementById("queue-body");
    const items = result.data.items || [];
    body.replaceChildren.apply(body, items.map(row));
    document.getElementById("queue-empty").hidden = items.length > 0;
    document.getElementById("queue").hidden = items.length === 0;
  }

  function row(item) {
    const line = S.make("tr", item.label ? "reviewed" : "");
    line.dataset.id = item.id;
    line.append(S.make("td", "text", item.text));
    line.append(S.make("td", "num", item.count));

    const reasons = S.make("td");
    (item.reasons || []).forEach(function (reason) {
      reasons.append(S.make("span", "reason", REASONS[reason] || reason));
    });
    line.append(reasons);

    const predicted = S.make("td");
    predicted.append(S.make("span", "intent", item.predicted || "—"));
    if (typeof item.confidence === "number") {
      predicted.append(S.make("span", "muted small", "（" + Math.round(item.confidence * 100) + "%）"));
    }
    line.append(predicted);

    const cell = S.make("td");
    const picker = S.make("div", "picker");
    const select = S.make("select", "label-picker");
    select.setAttribute("aria-label", "正确的意图");
    select.append(new Option("选择意图…", ""));
    state.labels.forEach(function (label) {
      select.append(new Option(labelText(label), label));
    });
    if (state.noise && state.labels.indexOf(state.noise) < 0) {
      select.append(new Option(NOISE_TEXT, state.noise));
    }
    select.value = item.label || "";
    const save = S.make("button", "primary save", "保存");
    save.type = "button";
    save.disabled = true;
    const saved = S.make("span", "saved");
    savedText(saved, item);
    select.addEventListener("change", function () {
      save.disabled = !select.value || select.value === item.label;
    });
    save.addEventListener("click", function () { store(item, select, save, saved, line); });
    picker.append(select, save, saved);
    cell.append(picker);
    line.append(cell);
    return line;
  }

  function savedText(node, item) {
    node.textContent = item.label
      ? "已标注：" + (item.reviewer_name || item.reviewer || "") + " " + S.localTime(item.reviewed_at)
      : "";
  }

  async function store(item, select, save, saved, line) {
    if (!select.value || state.saving[item.id]) return;
    state.saving[item.id] = true;
    save.disabled = true;
    const result = await S.api("POST", "review/" + encodeURIComponent(item.id), { label: select.value });
    state.saving[item.id] = false;
    if (!result.ok || !result.data) {
      save.disabled = false;
      if (result.status !== 401) S.toast(S.errorText(result, "保存标注"), true);
      return;
    }
    const stored = result.data.item || result.data;
    item.label = stored.label;
    item.reviewer = stored.reviewer;
    item.reviewer_name = stored.reviewer_name;
    item.reviewed_at = stored.reviewed_at;
    line.className = "reviewed";
    savedText(saved, item);
    S.toast("已保存标注");
    loadSummary();
  }

  document.getElementById("reload").addEventListener("click", function () {
    loadQueue();
    loadSummary();
  });

  (async function start() {
    if (!(await S.signIn())) return;
    await Promise.all([loadQueue(), loadSummary()]);
  })();
})();
