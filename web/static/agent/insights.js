// 借呗助手 数据洞察: the figures of GET /agent/api/stats as numbers, ECharts
// charts and tables, each table with its CSV download (stats.csv?table=...).
//
// The filters live in the address (?from=&to=&channel=), so a reload or a
// shared link shows the same range. Dates are UTC days, as the server counts.
"use strict";

(function () {
  const S = window.Staff;
  const DAY_MS = 24 * 3600 * 1000;
  const DEFAULT_DAYS = 30;
  // Bars shown in the intents chart; the table and the CSV have all of them.
  const TOP_INTENTS = 20;

  // Cause codes of the diagnosis (actions/diagnosis/rules.yml), as the desk names them.
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
  const REASONS = {
    scam: "疑似诈骗",
    after_failed_fix: "修复步骤没解决",
    requested: "用户要求转人工",
  };
  const COLORS = ["#1677ff", "#52c41a", "#faad14", "#f5222d", "#722ed1", "#13c2c2"];

  const el = {};
  ["filters", "from", "to", "channel", "apply", "range-note"].forEach(function (id) {
    el[id] = document.getElementById(id);
  });
  const charts = {};

  function isoDay(moment) {
    return new Date(moment).toISOString().slice(0, 10);
  }

  function readFilters() {
    const params = new URLSearchParams(window.location.search);
    const today = Date.now();
    el.to.value = params.get("to") || isoDay(today);
    el.from.value = params.get("from") || isoDay(today - (DEFAULT_DAYS - 1) * DAY_MS);
    el.channel.value = params.get("channel") || "";
    if (el.channel.value !== (params.get("channel") || "")) el.channel.value = "";
  }

  function query() {
    const params = new URLSearchParams();
    params.set("from", el.from.value);
    params.set("to", el.to.value);
    if (el.channel.value) params.set("channel", el.channel.value);
    return params;
  }

  async function load() {
    S.hideError();
    el.apply.disabled = true;
    const params = query();
    window.history.replaceState(null, "", "?" + params.toString());
    const result = await S.api("GET", "stats?" + params.toString());
    el.apply.disabled = false;
    if (!result.ok || !result.data) {
      if (result.status !== 401) S.showError(S.errorText(result, "读取数据"), result.status === 403);
      return;
    }
    show(result.data, params);
  }

  // --- the figures ----------------------------------------------------------

  function setKpi(id, value, note) {
    document.getElementById(id).textContent = value;
    document.getElementById(id + "-note").textContent = note || "";
  }

  function ofTotal(rates, name, what) {
    const figure = rates && rates[name];
    if (!figure) return "";
    return figure.numerator + " / " + figure.denominator + " " + what;
  }

  function show(figures, params) {
    const rates = figures.rates || {};
    const counts = figures.counts || {};
    const range = figures.range || {};
    el["range-note"].textContent =
      "统计区间 " + range.from + " 至 " + range.to + "（UTC），共 " + (counts.conversations || 0) + " 个会话";

    setKpi("kpi-self-service", S.percent(figures.self_service_rate),
      ofTotal(rates, "self_service_rate", "次诊断由机器人解决"));
    setKpi("kpi-handoff", S.percent(figures.handoff_rate),
      ofTotal(rates, "handoff_rate", "次诊断转人工"));
    setKpi("kpi-abandon", S.percent(figures.abandon_rate),
      ofTotal(rates, "abandon_rate", "次诊断中途放弃"));
    const csat = typeof figures.csat_average === "number" ? figures.csat_average.toFixed(2) + " / 5" : "—";
    setKpi("kpi-csat", csat, (counts.ratings || 0) + " 次评分");
    setKpi("kpi-fallback",
      S.percent(figures.fallback_rate) + " / " + S.percent(figures.did_you_mean_rate),
      (counts.fallbacks || 0) + " 次兜底，" + (counts.did_you_mean || 0) + " 次「您是想问」，共 " +
        (counts.user_messages || 0) + " 条用户消息");
    const reply = figures.first_reply_seconds || {};
    setKpi("kpi-first-reply", "中位 " + S.duration(reply.median),
      reply.count ? "90% 在 " + S.duration(reply.p90) + " 内，共 " + reply.count + " 个工单" : "暂无人工回复");

    const perDay = figures.per_day || [];
    const csatRows = Object.keys(figures.csat_distribution || {}).map(function (score) {
      return [score + " 分", figures.csat_distribution[score]];
    });
    const reasonRows = Object.keys(figures.handoff_reasons || {}).map(function (reason) {
      return [REASONS[reason] || reason, figures.handoff_reasons[reason]];
    });
    const causeRows = (figures.causes || []).map(function (item) {
      return [CAUSES[item.cause] || item.cause, item.count];
    });
    const intentRows = (figures.intents || []).map(function (item) {
      return [item.intent, item.count];
    });

    lineChart("chart-per-day", perDay);
    barChart("chart-csat", csatRows, false, "评分次数");
    pieChart("chart-handoff", reasonRows);
    barChart("chart-causes", causeRows, true, "诊断次数");
    barChart("chart-intents", intentRows.slice(0, TOP_INTENTS), true, "消息数");

    table("per_day", ["日期", "会话数", "用户消息", "诊断", "机器人解决", "转人工", "放弃"],
      perDay.map(function (day) {
        return [day.date, day.conversations, day.user_messages, day.diagnoses,
          day.resolved_by_bot, day.handed_off, day.abandoned];
      }));
    table("csat", ["评分", "次数"], csatRows);
    table("handoff_reasons", ["原因", "工单数"], reasonRows);
    table("causes", ["原因", "次数"], causeRows);
    table("intents", ["意图", "消息数"], intentRows);

    document.querySelectorAll("[data-table]").forEach(function (card) {
      const csv = new URLSearchParams(params);
      csv.set("table", card.dataset.table);
      const link = card.querySelector("a.csv");
      link.href = "/agent/api/stats.csv?" + csv.toString();
    });
  }

  // A table of text cells (never HTML); numbers right-aligned.
  function table(name, header, rows) {
    const slot = document.querySelector('[data-table="' + name + '"] .table-slot');
    const node = S.make("table", "data");
    const head = node.createTHead().insertRow();
    header.forEach(function (title, index) {
      const cell = S.make("th", index ? "num" : "", title);
      cell.scope = "col";
      head.append(cell);
    });
    const body = node.createTBody();
    rows.forEach(function (row) {
      const line = body.insertRow();
      row.forEach(function (value, index) {
        line.append(S.make("td", index ? "num" : "", value));
      });
    });
    if (!rows.length) {
      const line = body.insertRow();
      const cell = S.make("td", "muted", "暂无数据");
      cell.colSpan = header.length;
      line.append(cell);
    }
    slot.replaceChildren(node);
  }

  // --- the charts (ECharts, canvas) ----------------------------------------

  // One ECharts instance per container; data-rendered="1" once its last
  // drawing (animation included) has finished.
  function chart(id) {
    const container = document.getElementById(id);
    if (!charts[id]) {
      charts[id] = window.echarts.init(container, null, { renderer: "canvas" });
      charts[id].on("finished", function () { container.dataset.rendered = "1"; });
    }
    container.dataset.rendered = "";
    return charts[id];
  }

  function emptyTitle(rows) {
    const empty = !rows.length || rows.every(function (row) { return !row[1]; });
    return empty
      ? { text: "暂无数据", left: "center", top: "middle", textStyle: { color: "#999", fontSize: 14, fontWeight: "normal" } }
      : { show: false };
  }

  function lineChart(id, days) {
    const series = [
      ["会话数", "conversations"],
      ["诊断", "diagnoses"],
      ["机器人解决", "resolved_by_bot"],
      ["转人工", "handed_off"],
      ["放弃", "abandoned"],
    ];
    chart(id).setOption({
      color: COLORS,
      tooltip: { trigger: "axis" },
      legend: { top: 0 },
      grid: { left: 40, right: 20, top: 36, bottom: 30 },
      xAxis: { type: "category", data: days.map(function (day) { return day.date; }) },
      yAxis: { type: "value", minInterval: 1 },
      // conversations as bars, the diagnoses and their outcomes as lines
      series: series.map(function (item, index) {
        return {
          name: item[0],
          type: index ? "line" : "bar",
          barMaxWidth: 28,
          showSymbol: days.length <= 31,
          data: days.map(function (day) { return day[item[1]] || 0; }),
        };
      }),
    }, true);
  }

  function barChart(id, rows, horizontal, what) {
    const names = rows.map(function (row) { return String(row[0]); });
    const values = rows.map(function (row) { return row[1]; });
    const category = { type: "category", data: horizontal ? names.slice().reverse() : names,
      axisLabel: { width: 150, overflow: "truncate" } };
    const value = { type: "value", minInterval: 1 };
    chart(id).setOption({
      color: COLORS,
      title: emptyTitle(rows),
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      grid: { left: horizontal ? 160 : 40, right: 24, top: 16, bottom: 30 },
      xAxis: horizontal ? value : category,
      yAxis: horizontal ? category : value,
      series: [{ name: what, type: "bar", data: horizontal ? values.slice().reverse() : values,
        barMaxWidth: 36, label: { show: true, position: horizontal ? "right" : "top" } }],
    }, true);
  }

  function pieChart(id, rows) {
    chart(id).setOption({
      color: ["#f5222d", "#faad14", "#1677ff"],
      title: emptyTitle(rows),
      tooltip: { trigger: "item", formatter: "{b}：{c}（{d}%）" },
      legend: { bottom: 0 },
      series: [{
        type: "pie",
        radius: ["35%", "65%"],
        center: ["50%", "45%"],
        data: rows.filter(function (row) { return row[1]; }).map(function (row) {
          return { name: row[0], value: row[1] };
        }),
        label: { formatter: "{b}\n{c}" },
      }],
    }, true);
  }

  window.addEventListener("resize", function () {
    Object.keys(charts).forEach(function (id) { charts[id].resize(); });
  });

  el.filters.addEventListener("submit", function (event) {
    event.preventDefault();
    if (!el.from.value || !el.to.value) {
      S.showError("请选择开始和结束日期。");
      return;
    }
    if (el.from.value > el.to.value) {
      S.showError("开始日期不能晚于结束日期。");
      return;
    }
    load();
  });

  (async function start() {
    if (!window.echarts) {
      S.showError("图表组件 vendor/echarts.min.js 没有加载：请运行 make web。");
      return;
    }
    if (!(await S.signIn())) return;
    readFilters();
    load();
  })();
})();
