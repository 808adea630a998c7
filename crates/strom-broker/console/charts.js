// Strom console: the Charts page. Line charts drawn as inline SVG from /api/history (the
// broker's last 15 minutes, one point per 10 s plus a "now" point). No chart library, no
// download at runtime. Loaded before app.js; uses its helpers (h, api, every, go, ...)
// when a page is drawn. Untrusted names (topics, groups) go in as text nodes only.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const CHART_WIDTH = 560;
const CHART_HEIGHT = 190;
const CHART_MARGIN = { left: 64, right: 12, top: 10, bottom: 24 };
const CHART_COLORS = ["#1f6feb", "#d9480f", "#2f9e44", "#ae3ec9", "#f59f00", "#0c8599",
  "#e03131", "#5c940d", "#6741d9", "#868e96"];
// Most lines one chart draws (the rest are named as left out).
const CHART_SERIES_MAX = 10;

function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value !== undefined && value !== null) el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// 1, 2 or 5 times a power of ten, at least `value`.
function niceCeiling(value) {
  if (!(value > 0)) return 1;
  const power = Math.pow(10, Math.floor(Math.log10(value)));
  for (const step of [1, 2, 5, 10]) {
    if (step * power >= value) return step * power;
  }
  return 10 * power;
}

const chartFormats = {
  bytes: (v) => `${fmtBytes(Math.round(v))}/s`,
  rate: (v) => `${v < 10 ? Number(v.toFixed(1)) : Math.round(v).toLocaleString("en-US")}/s`,
  ms: (v) => `${v < 10 ? Number(v.toFixed(2)) : Math.round(v).toLocaleString("en-US")} ms`,
  count: (v) => (Number.isInteger(v) ? v : Number(v.toFixed(1))).toLocaleString("en-US"),
};

// A line chart over the time window [from, to] (ms). `series`: [{ name, values }] with one
// value (number or null for "no data") per time in `times`. Gaps break the line.
function lineChart({ testid, title, format, times, from, to, series, note }) {
  const fmt = chartFormats[format] || chartFormats.count;
  const shown = series.slice(0, CHART_SERIES_MAX);
  const values = shown.flatMap((s) => s.values.filter((v) => v !== null && v !== undefined));
  const top = niceCeiling(Math.max(0, ...values));
  const width = CHART_WIDTH - CHART_MARGIN.left - CHART_MARGIN.right;
  const height = CHART_HEIGHT - CHART_MARGIN.top - CHART_MARGIN.bottom;
  const x = (t) => CHART_MARGIN.left + Math.max(0, Math.min(1, (t - from) / (to - from))) * width;
  const y = (v) => CHART_MARGIN.top + height - (v / top) * height;
  const grid = [0, 0.5, 1].map((share) => svg("g", { class: "grid" },
    svg("line", { x1: CHART_MARGIN.left, x2: CHART_MARGIN.left + width, y1: y(top * share), y2: y(top * share) }),
    svg("text", { x: CHART_MARGIN.left - 6, y: y(top * share) + 4, "text-anchor": "end" }, fmt(top * share))));
  const minutes = Math.round((to - from) / 60000);
  const ticks = [0, 1 / 3, 2 / 3, 1].map((share) => {
    const label = share === 1 ? "now" : `−${Math.round(minutes * (1 - share))} min`;
    return svg("text", { x: CHART_MARGIN.left + share * width, y: CHART_HEIGHT - 6,
      "text-anchor": share === 0 ? "start" : share === 1 ? "end" : "middle", class: "tick" }, label);
  });
  const lines = shown.map((s, index) => {
    let d = "";
    let run = 0; // points in the current unbroken run
    const closeRun = () => { if (run === 1) d += "h0.01"; run = 0; }; // a lone point: a dot
    s.values.forEach((v, i) => {
      if (v === null || v === undefined || times[i] < from) { closeRun(); return; }
      d += `${run ? "L" : "M"}${x(times[i]).toFixed(1)},${y(v).toFixed(1)}`;
      run++;
    });
    closeRun();
    return svg("path", { d: d || "M0,0", class: "series", "data-series": s.name,
      stroke: CHART_COLORS[index % CHART_COLORS.length] });
  });
  const lastOf = (s) => { for (let i = s.values.length - 1; i >= 0; i--) if (s.values[i] !== null) return s.values[i]; return null; };
  const legend = h("div", { class: "legend" }, shown.map((s, index) =>
    h("span", {}, h("i", { style: `background:${CHART_COLORS[index % CHART_COLORS.length]}` }),
      s.name, h("b", {}, lastOf(s) === null ? "–" : fmt(lastOf(s))))),
  series.length > shown.length ? h("span", { class: "muted" }, `+${series.length - shown.length} more not drawn`) : null);
  return h("figure", { class: "chart", "data-testid": testid },
    h("figcaption", {}, title),
    svg("svg", { viewBox: `0 0 ${CHART_WIDTH} ${CHART_HEIGHT}`, role: "img", "aria-label": title,
      "data-points": times.length },
      svg("rect", { x: CHART_MARGIN.left, y: CHART_MARGIN.top, width, height, class: "plot" }),
      grid, ticks, lines),
    legend,
    note ? h("div", { class: "refresh" }, note) : null);
}

async function renderCharts(params) {
  const minutes = Number(params.get("minutes") || 15);
  const topicSelect = h("select", { "data-testid": "chart-topic", "aria-label": "Topic" });
  const groupSelect = h("select", { "data-testid": "chart-group", "aria-label": "Consumer group" });
  const minutesSelect = h("select", { "data-testid": "chart-minutes", "aria-label": "Window" },
    [5, 15].map((m) => h("option", { value: m, selected: m === minutes }, `last ${m} minutes`)));
  const change = () => {
    const next = new URLSearchParams();
    if (minutesSelect.value !== "15") next.set("minutes", minutesSelect.value);
    if (topicSelect.value) next.set("topic", topicSelect.value);
    if (groupSelect.value) next.set("group", groupSelect.value);
    go(["charts"], next);
  };
  [topicSelect, groupSelect, minutesSelect].forEach((el) => el.addEventListener("change", change));
  const fill = (select, names, chosen, none) => {
    const list = chosen && !names.includes(chosen) ? [chosen, ...names] : names;
    const key = list.join("\n");
    if (select.dataset.names === key) return;
    select.dataset.names = key;
    setChildren(select, h("option", { value: "" }, none),
      list.map((name) => h("option", { value: name, selected: name === chosen }, name)));
  };
  const body = h("div", { class: "charts" });
  setChildren(view,
    h("h1", {}, "Charts", h("small", {}, "rates and latency from this broker, one point per 10 s")),
    h("div", { class: "toolbar" }, minutesSelect,
      h("label", {}, "topic ", topicSelect), h("label", {}, "group ", groupSelect)),
    body);

  const draw = async () => {
    const query = new URLSearchParams({ minutes });
    if (params.get("topic")) query.set("topic", params.get("topic"));
    if (params.get("group")) query.set("group", params.get("group"));
    const d = await api(`/api/history?${query}`);
    fill(topicSelect, [...d.topics].sort(), params.get("topic"), "busiest topic");
    fill(groupSelect, d.lag.groups.map((g) => g.group), params.get("group"), "most lagging group");
    const frame = { times: d.times_ms, from: d.now_ms - d.window_ms, to: d.now_ms };
    const topic = d.topic; // the chosen topic, else the busiest
    const apis = [...d.request_p99_ms].sort((a, b) =>
      Math.max(0, ...b.p99_ms.filter((v) => v !== null)) - Math.max(0, ...a.p99_ms.filter((v) => v !== null)));
    const detail = d.lag.group;
    const empty = d.times_ms.length === 0;
    setChildren(body,
      empty ? h("div", { class: "empty" }, "No samples yet: the first point appears a second after the broker starts.") : null,
      lineChart({ ...frame, testid: "chart-total-messages", title: "Messages in, all topics", format: "rate",
        series: [{ name: "messages in", values: d.total.messages_in_per_s }] }),
      lineChart({ ...frame, testid: "chart-total-bytes", title: "Bytes in and out, all topics", format: "bytes",
        series: [{ name: "bytes in", values: d.total.bytes_in_per_s }, { name: "bytes out", values: d.total.bytes_out_per_s }] }),
      topic
        ? lineChart({ ...frame, testid: "chart-topic-rates", title: `Topic ${topic.name}: bytes in and out`, format: "bytes",
          series: [{ name: "bytes in", values: topic.bytes_in_per_s }, { name: "bytes out", values: topic.bytes_out_per_s }] })
        : null,
      topic
        ? lineChart({ ...frame, testid: "chart-topic-messages", title: `Topic ${topic.name}: messages in`, format: "rate",
          series: [{ name: "messages in", values: topic.messages_in_per_s }] })
        : null,
      lineChart({ ...frame, testid: "chart-latency", title: "Request latency p99 per API", format: "ms",
        series: apis.map((a) => ({ name: a.api, values: a.p99_ms })),
        note: "p99 of each 10 s interval, from the request-duration histogram (bucket-interpolated)" }),
      lineChart({ ...frame, testid: "chart-lag-groups", title: "Consumer lag by group (records behind the high watermark)", format: "count",
        series: d.lag.groups.map((g) => ({ name: g.group, values: g.total })) }),
      detail
        ? lineChart({ ...frame, testid: "chart-lag-partitions", title: `Lag of ${detail.group} by partition`, format: "count",
          series: detail.partitions.map((p) => ({ name: `${p.topic} [${p.partition}]`, values: p.lag })) })
        : null,
      lineChart({ ...frame, testid: "chart-under-replicated", title: "Under-replicated and offline partitions", format: "count",
        series: [{ name: "under-replicated", values: d.under_replicated_partitions },
          { name: "offline", values: d.offline_partitions }] }),
      h("p", { class: "refresh" }, `${d.times_ms.length} points${d.live ? " (the last one is now, since the last sample)" : ""}. Refreshes every ${REFRESH_MS / 1000} s. Data: /api/history.`));
  };
  await draw();
  every(REFRESH_MS, draw);
}
