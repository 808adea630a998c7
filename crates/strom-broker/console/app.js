// Strom console: a small single-page app over the broker's JSON API (/api/...).
// Plain DOM, no framework, no build step. Untrusted text (topic names, group ids, message
// contents) only ever goes into the page as text nodes, never as HTML.
"use strict";

const REFRESH_MS = 2000;
const view = document.getElementById("view");
let timers = [];
let routeToken = 0;

// ------------------------------------------------------------------ helpers

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// Replaces an element's children, skipping null/false and flattening arrays.
function setChildren(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

async function api(path, options) {
  const response = await fetch(path, options);
  let body = null;
  try { body = await response.json(); } catch (_) { /* not JSON */ }
  if (!response.ok) {
    const message = (body && body.error) || `${response.status} ${response.statusText}`;
    throw new Error(message);
  }
  return body;
}

function sendJson(method, path, data) {
  return api(path, {
    method,
    headers: { "content-type": "application/json" },
    body: data === undefined ? undefined : JSON.stringify(data),
  });
}

function fmtNumber(n) {
  if (n === null || n === undefined) return "–";
  return Number(n).toLocaleString("en-US");
}

function fmtBytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = Number(n);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++; }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

function fmtRate(n, unit) {
  if (n === null || n === undefined || !isFinite(n)) return "–";
  return `${n < 10 ? n.toFixed(1) : Math.round(n).toLocaleString("en-US")} ${unit}/s`;
}

function fmtDuration(ms) {
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400), hr = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  if (d) return `${d}d ${hr}h`;
  if (hr) return `${hr}h ${m}m`;
  if (m) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

function fmtTime(ms) {
  if (ms === null || ms === undefined || ms < 0) return "–";
  return new Date(ms).toISOString().replace("T", " ").replace("Z", " UTC");
}

function card(label, value, options) {
  const o = options || {};
  return h("div", { class: `card${o.bad ? " bad" : ""}`, "data-testid": o.testid },
    h("div", { class: "label" }, label),
    h("div", { class: `value${o.small ? " small" : ""}` }, value));
}

function table(headers, rows, options) {
  const o = options || {};
  return h("table", { "data-testid": o.testid },
    h("thead", {}, h("tr", {}, headers.map((col) =>
      h("th", { class: col.num ? "num" : "" }, col.label || col)))),
    h("tbody", {}, rows));
}

function td(value, options) {
  const o = options || {};
  return h("td", { class: o.num ? "num" : o.cls || "" }, value);
}

function every(ms, fn) {
  const token = routeToken;
  const tick = async () => {
    if (token !== routeToken) return;
    try { await fn(); } catch (error) { console.warn(error); }
    if (token === routeToken) timers.push(setTimeout(tick, ms));
  };
  timers.push(setTimeout(tick, ms));
}

function showError(error) {
  setChildren(view, h("p", { class: "error", "data-testid": "error" }, String(error.message || error)));
}

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, query] = raw.split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { parts, params };
}

function go(parts, params) {
  const path = "/" + parts.map(encodeURIComponent).join("/");
  const query = params && [...params.keys()].length ? `?${params}` : "";
  location.hash = `#${path}${query}`;
}

// A dialog that asks for confirmation; `build` fills the body and returns a function that
// reads the inputs (or throws with a message); `action` runs on OK and may throw.
function dialog({ title, okLabel, danger, build, action }) {
  const el = document.getElementById("dialog");
  const ok = document.getElementById("dialog-ok");
  const cancel = document.getElementById("dialog-cancel");
  const errorEl = document.getElementById("dialog-error");
  document.getElementById("dialog-title").textContent = title;
  const body = document.getElementById("dialog-body");
  setChildren(body);
  const read = build(body);
  ok.textContent = okLabel || "OK";
  ok.className = danger ? "danger primary" : "primary";
  errorEl.hidden = true;
  return new Promise((resolve) => {
    const close = (result) => {
      ok.onclick = null;
      cancel.onclick = null;
      el.close();
      resolve(result);
    };
    cancel.onclick = () => close(null);
    ok.onclick = async (event) => {
      event.preventDefault();
      ok.disabled = true;
      try {
        const result = await action(read ? read() : undefined);
        close(result === undefined ? true : result);
      } catch (error) {
        errorEl.textContent = String(error.message || error);
        errorEl.hidden = false;
      } finally {
        ok.disabled = false;
      }
    };
    el.showModal();
  });
}

function field(label, input) {
  return [h("label", {}, label), input];
}

// ------------------------------------------------------------------ health badge

async function refreshHealth() {
  const badge = document.getElementById("health");
  try {
    const response = await fetch("/ready");
    const body = await response.json();
    badge.textContent = body.ready ? "ready" : "not ready";
    badge.className = `badge ${body.ready ? "ok" : "bad"}`;
    badge.title = (body.problems || []).join("\n");
  } catch (_) {
    badge.textContent = "unreachable";
    badge.className = "badge bad";
  }
}

// ------------------------------------------------------------------ overview

async function renderOverview() {
  let previous = null;
  const body = h("div", {});
  setChildren(view, h("h1", {}, "Cluster overview"), body);
  const draw = async () => {
    const o = await api("/api/overview");
    const seconds = previous ? (o.now_ms - previous.now_ms) / 1000 : 0;
    const rate = (key) => (previous && seconds > 0 ? (o[key] - previous[key]) / seconds : null);
    previous = o;
    const problems = o.readiness.problems || [];
    setChildren(body, 
      h("div", { class: "cards" },
        card("Health", o.readiness.ready ? "ready" : "not ready", { bad: !o.readiness.ready, testid: "overview-health" }),
        card("Cluster id", o.cluster_id || "–", { small: true }),
        card("Version", o.version, { small: true }),
        card("Controller", `node ${o.controller_id}`, { small: true }),
        card("Brokers", fmtNumber(o.brokers.length)),
        card("Topics", fmtNumber(o.topics), { testid: "overview-topics" }),
        card("Partitions", fmtNumber(o.partitions)),
        card("Under-replicated", fmtNumber(o.under_replicated_partitions), { bad: o.under_replicated_partitions > 0 }),
        card("Offline partitions", fmtNumber(o.offline_partitions), { bad: o.offline_partitions > 0 }),
        card("Consumer groups", fmtNumber(o.groups)),
        card("Log size", fmtBytes(o.log_size_bytes)),
        card("Connections", fmtNumber(o.connections)),
        card("Messages in", previous && seconds ? fmtRate(rate("messages_in_total"), "msg") : fmtNumber(o.messages_in_total), { small: true }),
        card("Bytes in", fmtRate(rate("bytes_in_total"), "B"), { small: true }),
        card("Bytes out", fmtRate(rate("bytes_out_total"), "B"), { small: true }),
        card("Uptime", fmtDuration(o.now_ms - o.started_at_ms), { small: true })),
      problems.length ? h("div", { class: "problems" }, h("b", {}, "Not ready: "), problems.join("; ")) : null,
      h("h2", {}, "Brokers"),
      table(["Id", "Host", "Port", "Rack", "Role"], o.brokers.map((b) =>
        h("tr", {}, td(b.id), td(b.host), td(b.port), td(b.rack || "–"),
          td(b.is_controller ? "broker, active controller" : "broker")))),
      h("p", { class: "refresh" }, `Totals since start: ${fmtNumber(o.messages_in_total)} messages, ${fmtBytes(o.bytes_in_total)} in, ${fmtBytes(o.bytes_out_total)} out, ${fmtNumber(o.requests_total)} requests. Refreshes every ${REFRESH_MS / 1000} s.`),
    );
  };
  await draw();
  every(REFRESH_MS, draw);
}

// ------------------------------------------------------------------ topics

async function renderTopics(params) {
  const filter = params.get("filter") || "";
  const page = Number(params.get("page") || 1);
  const pageSize = Number(params.get("page_size") || 50);
  const internal = params.get("internal") !== "false";
  const query = new URLSearchParams({ page, page_size: pageSize });
  if (filter) query.set("filter", filter);
  if (!internal) query.set("internal", "false");

  const filterInput = h("input", {
    type: "search", placeholder: "Filter by name", value: filter, "data-testid": "topic-filter",
    "aria-label": "Filter topics by name",
  });
  let debounce = null;
  filterInput.addEventListener("input", () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => {
      const next = new URLSearchParams(params);
      if (filterInput.value) next.set("filter", filterInput.value); else next.delete("filter");
      next.delete("page");
      go(["topics"], next);
    }, 250);
  });
  const internalBox = h("input", { type: "checkbox", checked: internal, id: "show-internal" });
  internalBox.addEventListener("change", () => {
    const next = new URLSearchParams(params);
    if (internalBox.checked) next.delete("internal"); else next.set("internal", "false");
    next.delete("page");
    go(["topics"], next);
  });
  const pageLink = (target) => {
    const next = new URLSearchParams(params);
    next.set("page", target);
    return `#/topics?${next}`;
  };
  const title = h("small", { "data-testid": "topic-total" });
  const results = h("div", {});
  setChildren(view,
    h("h1", {}, "Topics", title),
    h("div", { class: "toolbar" },
      filterInput,
      h("label", { for: "show-internal" }, internalBox, " internal topics"),
      h("span", { class: "spacer" }),
      h("button", { class: "primary", onclick: createTopicDialog, "data-testid": "create-topic" }, "Create topic")),
    results);

  // Throughput comes from the change of each topic's counters between two refreshes.
  let previous = null;
  const draw = async () => {
    const data = await api(`/api/topics?${query}`);
    const now = Date.now();
    const seconds = previous ? (now - previous.at) / 1000 : 0;
    const rate = (t, key) => {
      const before = previous && previous.topics.get(t.name);
      return before && seconds > 0 ? (t[key] - before[key]) / seconds : null;
    };
    const rows = data.topics.map((t) => h("tr", { "data-testid": "topic-row" },
      td(h("a", { href: `#/topics/${encodeURIComponent(t.name)}` }, t.name)),
      td(fmtNumber(t.partitions), { num: true }),
      td(fmtNumber(t.replication_factor), { num: true }),
      td(fmtNumber(t.messages), { num: true }),
      td(fmtBytes(t.size_bytes), { num: true }),
      td(fmtRate(rate(t, "messages_in_total"), "msg"), { num: true }),
      td(fmtRate(rate(t, "bytes_in_total"), "B"), { num: true }),
      td(fmtRate(rate(t, "bytes_out_total"), "B"), { num: true }),
      td(t.internal ? "internal" : "", { cls: "muted" })));
    previous = { at: now, topics: new Map(data.topics.map((t) => [t.name, t])) };
    title.textContent = `${fmtNumber(data.total)} matching`;
    setChildren(results,
      rows.length
        ? table(["Name", { label: "Partitions", num: true }, { label: "RF", num: true },
          { label: "Messages", num: true }, { label: "Size", num: true },
          { label: "In", num: true }, { label: "Bytes in", num: true }, { label: "Bytes out", num: true }, ""], rows, { testid: "topics-table" })
        : h("div", { class: "empty" }, filter ? `No topic matches “${filter}”.` : "No topics yet."),
      h("div", { class: "pager", "data-testid": "pager" },
        page > 1 ? h("a", { href: pageLink(page - 1), "data-testid": "page-prev" }, "‹ previous") : h("span", {}, "‹ previous"),
        h("span", { "data-testid": "page-info" }, `page ${data.pages ? page : 0} of ${data.pages}`),
        page < data.pages ? h("a", { href: pageLink(page + 1), "data-testid": "page-next" }, "next ›") : h("span", {}, "next ›"),
        h("span", { class: "refresh" }, ` · throughput over the last ${REFRESH_MS * 2.5 / 1000} s`)));
  };
  await draw();
  if (filter) { filterInput.focus(); filterInput.setSelectionRange(filter.length, filter.length); }
  every(REFRESH_MS * 2.5, draw);
}

async function createTopicDialog() {
  const created = await dialog({
    title: "Create topic",
    okLabel: "Create",
    build: (body) => {
      const name = h("input", { name: "name", required: true, "data-testid": "new-topic-name", placeholder: "orders" });
      const partitions = h("input", { name: "partitions", type: "number", min: 1, value: 1, "data-testid": "new-topic-partitions" });
      const rf = h("input", { name: "replication_factor", type: "number", min: 1, value: 1 });
      const retention = h("input", { name: "retention", placeholder: "broker default", "data-testid": "new-topic-retention" });
      body.append(...field("Name", name), ...field("Partitions", partitions),
        ...field("Replication factor", rf), ...field("retention.ms (optional)", retention));
      setTimeout(() => name.focus(), 0);
      return () => {
        if (!name.value.trim()) throw new Error("A topic needs a name.");
        const configs = {};
        if (retention.value.trim()) configs["retention.ms"] = retention.value.trim();
        return { name: name.value.trim(), partitions: Number(partitions.value), replication_factor: Number(rf.value), configs };
      };
    },
    action: (topic) => sendJson("POST", "/api/topics", topic),
  });
  if (created) go(["topics", created.name]);
}

// ------------------------------------------------------------------ topic detail

async function renderTopic(name) {
  const body = h("div", {});
  setChildren(view, body);
  const draw = async () => {
    const t = await api(`/api/topics/${encodeURIComponent(name)}`);
    setChildren(body, 
      h("h1", { "data-testid": "topic-name" }, t.name, h("small", {}, `id ${t.topic_id}`)),
      h("div", { class: "toolbar" },
        h("a", { href: `#/topics/${encodeURIComponent(t.name)}/messages`, "data-testid": "browse-link" },
          h("button", { class: "primary", type: "button" }, "Browse messages")),
        h("span", { class: "spacer" }),
        t.internal ? null : h("button", { class: "danger", onclick: () => deleteTopicDialog(t.name), "data-testid": "delete-topic" }, "Delete topic")),
      h("div", { class: "cards" },
        card("Partitions", fmtNumber(t.partitions.length)),
        card("Replication factor", fmtNumber(t.replication_factor)),
        card("Messages in (since start)", fmtNumber(t.messages_in_total)),
        card("Bytes in (since start)", fmtBytes(t.bytes_in_total)),
        card("Bytes out (since start)", fmtBytes(t.bytes_out_total))),
      h("h2", {}, "Partitions"),
      table(["Partition", { label: "Leader", num: true }, { label: "Epoch", num: true }, "Replicas", "ISR",
        { label: "Log start", num: true }, { label: "Log end", num: true }, { label: "Size", num: true }],
      t.partitions.map((p) => h("tr", { "data-testid": "partition-row" },
        td(h("a", { href: `#/topics/${encodeURIComponent(t.name)}/messages?partition=${p.partition}` }, p.partition)),
        td(p.leader, { num: true }), td(p.leader_epoch, { num: true }),
        td(p.replicas.join(", ")),
        td(p.isr.join(", "), { cls: p.isr.length < p.replicas.length ? "error" : "" }),
        td(fmtNumber(p.log_start_offset), { num: true }),
        td(fmtNumber(p.log_end_offset), { num: true }),
        td(fmtBytes(p.size_bytes), { num: true }))), { testid: "partitions-table" }),
      h("h2", {}, "Configs"),
      table(["Name", "Value", "Source"], t.configs.map((c) => h("tr", {},
        td(c.name, { cls: "mono" }), td(c.value, { cls: "mono" }),
        td(c.source, { cls: c.source === "topic" ? "ok" : "muted" }))), { testid: "configs-table" }),
    );
  };
  await draw();
  every(REFRESH_MS * 2.5, draw);
}

async function deleteTopicDialog(name) {
  const deleted = await dialog({
    title: `Delete topic ${name}?`,
    okLabel: "Delete",
    danger: true,
    build: (body) => {
      const confirmInput = h("input", { "data-testid": "confirm-name", autocomplete: "off" });
      body.append(h("p", {}, "This deletes every partition and all of its messages. It cannot be undone."),
        ...field(`Type the topic name (${name}) to confirm`, confirmInput));
      setTimeout(() => confirmInput.focus(), 0);
      return () => {
        if (confirmInput.value !== name) throw new Error("The name does not match.");
      };
    },
    action: () => sendJson("DELETE", `/api/topics/${encodeURIComponent(name)}`),
  });
  if (deleted) go(["topics"]);
}

// ------------------------------------------------------------------ message browser

function bytesOf(field) {
  if (!field) return null;
  const binary = atob(field.base64);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

function render(bytes, format) {
  if (bytes === null) return h("span", { class: "muted" }, "null");
  if (format === "hex") {
    const lines = [];
    for (let i = 0; i < bytes.length; i += 16) {
      const chunk = bytes.slice(i, i + 16);
      const hex = [...chunk].map((b) => b.toString(16).padStart(2, "0")).join(" ");
      const ascii = [...chunk].map((b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : ".")).join("");
      lines.push(`${i.toString(16).padStart(8, "0")}  ${hex.padEnd(47)}  ${ascii}`);
    }
    return h("pre", { "data-format": "hex" }, lines.join("\n") || "(empty)");
  }
  const text = new TextDecoder("utf-8", { fatal: false }).decode(bytes);
  if (format === "json") {
    try {
      return h("pre", { "data-format": "json" }, JSON.stringify(JSON.parse(text), null, 2));
    } catch (_) {
      return h("pre", { "data-format": "text" }, text, h("span", { class: "muted" }, "  (not JSON)"));
    }
  }
  return h("pre", { "data-format": "text" }, text || "(empty)");
}

async function renderMessages(name, params) {
  const topic = await api(`/api/topics/${encodeURIComponent(name)}`);
  const partition = Number(params.get("partition") || 0);
  const mode = params.get("mode") || (params.has("offset") ? "offset" : params.has("timestamp") ? "timestamp" : "latest");
  const format = params.get("format") || "text";
  const limit = Number(params.get("limit") || 20);
  const query = new URLSearchParams({ partition, limit });
  if (mode === "offset" && params.get("offset")) query.set("offset", params.get("offset"));
  if (mode === "timestamp" && params.get("timestamp")) {
    const ms = Date.parse(params.get("timestamp"));
    if (!isNaN(ms)) query.set("timestamp_ms", ms);
  }
  const data = await api(`/api/topics/${encodeURIComponent(name)}/messages?${query}`);

  const partitionSelect = h("select", { name: "partition", "data-testid": "browse-partition", "aria-label": "Partition" },
    topic.partitions.map((p) => h("option", { value: p.partition, selected: p.partition === partition }, `partition ${p.partition}`)));
  const modeSelect = h("select", { name: "mode", "data-testid": "browse-mode", "aria-label": "Start at" },
    [["latest", "latest messages"], ["offset", "from offset"], ["timestamp", "from time"]].map(([value, label]) =>
      h("option", { value, selected: value === mode }, label)));
  const offsetInput = h("input", { name: "offset", type: "number", min: 0, placeholder: "offset", value: params.get("offset") || "", "data-testid": "browse-offset" });
  const timeInput = h("input", { name: "timestamp", type: "datetime-local", step: 1, value: params.get("timestamp") || "", "data-testid": "browse-timestamp" });
  const formatSelect = h("select", { name: "format", "data-testid": "browse-format", "aria-label": "Show as" },
    [["text", "text"], ["json", "JSON (pretty)"], ["hex", "hex"]].map(([value, label]) =>
      h("option", { value, selected: value === format }, label)));
  const apply = (event) => {
    if (event) event.preventDefault();
    const next = new URLSearchParams({ partition: partitionSelect.value, mode: modeSelect.value, format: formatSelect.value, limit });
    if (modeSelect.value === "offset") next.set("offset", offsetInput.value || "0");
    if (modeSelect.value === "timestamp" && timeInput.value) next.set("timestamp", timeInput.value);
    go(["topics", name, "messages"], next);
  };
  const syncVisibility = () => {
    offsetInput.hidden = modeSelect.value !== "offset";
    timeInput.hidden = modeSelect.value !== "timestamp";
  };
  modeSelect.addEventListener("change", syncVisibility);
  formatSelect.addEventListener("change", apply);
  partitionSelect.addEventListener("change", apply);
  syncVisibility();
  const nextParams = new URLSearchParams({ partition, mode: "offset", offset: data.next_offset, format, limit });
  const messages = data.messages.map((m) => h("div", { class: "message", "data-testid": "message", "data-offset": m.offset },
    h("div", { class: "meta" },
      h("span", {}, "offset ", h("b", { "data-testid": "message-offset" }, m.offset)),
      h("span", {}, `${m.timestamp_type} `, h("b", { "data-testid": "message-timestamp" }, fmtTime(m.timestamp_ms))),
      m.key ? h("span", {}, `key ${fmtBytes(m.key.size)}`) : null,
      m.value ? h("span", {}, `value ${fmtBytes(m.value.size)}${m.value.truncated ? " (cut)" : ""}`) : null),
    h("div", { class: "field", "data-testid": "message-key" }, h("span", {}, "key"), render(bytesOf(m.key), format)),
    h("div", { class: "field", "data-testid": "message-value" }, h("span", {}, "value"), render(bytesOf(m.value), format)),
    m.headers.length ? h("div", { class: "field" }, h("span", {}, "headers"),
      h("table", { class: "headers", "data-testid": "message-headers" }, h("tbody", {}, m.headers.map((header) =>
        h("tr", {}, td(header.key, { cls: "mono" }), td(render(bytesOf(header.value), format === "hex" ? "hex" : "text"))))))) : null));
  setChildren(view, 
    h("h1", {}, h("a", { href: `#/topics/${encodeURIComponent(name)}` }, name), " › messages",
      h("small", {}, `partition ${partition}: offsets ${fmtNumber(data.log_start_offset)} to ${fmtNumber(data.log_end_offset)}`)),
    h("form", { class: "toolbar", onsubmit: apply },
      partitionSelect, modeSelect, offsetInput, timeInput,
      h("label", {}, "show as ", formatSelect),
      h("button", { type: "submit", class: "primary", "data-testid": "browse-go" }, "Show")),
    ...(messages.length ? messages : [h("div", { class: "empty", "data-testid": "no-messages" }, "No messages here.")]),
    h("div", { class: "pager" },
      data.next_offset < data.log_end_offset
        ? h("a", { href: `#/topics/${encodeURIComponent(name)}/messages?${nextParams}`, "data-testid": "browse-next" }, `next from offset ${data.next_offset} ›`)
        : h("span", {}, "end of partition")),
  );
}

// ------------------------------------------------------------------ consumer groups

async function renderGroups() {
  const body = h("div", {});
  setChildren(view, h("h1", {}, "Consumer groups"), body);
  const draw = async () => {
    const data = await api("/api/groups");
    setChildren(body, 
      data.groups.length
        ? table(["Group", "Type", "State", { label: "Members", num: true }, { label: "Partitions", num: true }, { label: "Lag", num: true }],
          data.groups.map((g) => h("tr", { "data-testid": "group-row" },
            td(h("a", { href: `#/groups/${encodeURIComponent(g.group_id)}` }, g.group_id)),
            td(g.group_type), td(g.state),
            td(fmtNumber(g.members), { num: true }),
            td(fmtNumber(g.committed_partitions), { num: true }),
            td(fmtNumber(g.total_lag), { num: true }))), { testid: "groups-table" })
        : h("div", { class: "empty" }, data.loaded ? "No consumer groups yet." : "Committed offsets are loading…"),
      h("p", { class: "refresh" }, `Live: refreshes every ${REFRESH_MS / 1000} s.`));
  };
  await draw();
  every(REFRESH_MS, draw);
}

async function renderGroup(id) {
  const body = h("div", {});
  setChildren(view, body);
  let latest = null;
  const draw = async () => {
    const g = await api(`/api/groups/${encodeURIComponent(id)}`);
    latest = g;
    setChildren(body, 
      h("h1", { "data-testid": "group-name" }, g.group_id, h("small", {}, `${g.group_type} group`)),
      h("div", { class: "toolbar" },
        h("span", { class: "spacer" }),
        h("button", { onclick: () => resetOffsetsDialog(latest), "data-testid": "reset-offsets", disabled: g.members.length > 0,
          title: g.members.length > 0 ? "Stop the group's consumers first" : "" }, "Reset offsets")),
      h("div", { class: "cards" },
        card("State", g.state, { testid: "group-state" }),
        card("Members", fmtNumber(g.members.length)),
        card(g.group_type === "consumer" ? "Group epoch" : "Generation", fmtNumber(g.generation)),
        card("Assignor", g.protocol || "–", { small: true }),
        card("Total lag", fmtNumber(g.total_lag), { testid: "group-lag" })),
      h("h2", {}, "Members"),
      g.members.length
        ? table(["Member", "Client id", "Host", "Assignment"], g.members.map((m) => h("tr", {},
          td(m.member_id, { cls: "mono" }), td(m.client_id), td(m.client_host),
          td(Object.entries(m.assignment).map(([topic, parts]) => `${topic}: ${parts.join(", ")}`).join("; ") || "–")))) 
        : h("div", { class: "empty" }, "No active members."),
      h("h2", {}, "Committed offsets and lag"),
      g.offsets.length
        ? table(["Topic", { label: "Partition", num: true }, { label: "Committed", num: true }, { label: "Log end", num: true }, { label: "Lag", num: true }, "Member"],
          g.offsets.map((o) => h("tr", { "data-testid": "offset-row" },
            td(h("a", { href: `#/topics/${encodeURIComponent(o.topic)}` }, o.topic)),
            td(o.partition, { num: true }),
            td(fmtNumber(o.committed_offset), { num: true }),
            td(fmtNumber(o.log_end_offset), { num: true }),
            h("td", { class: `num${o.lag > 0 ? " lag-high" : ""}`, "data-testid": "offset-lag" }, fmtNumber(o.lag)),
            td(o.member_id || "–", { cls: "mono" }))), { testid: "offsets-table" })
        : h("div", { class: "empty" }, "No committed offsets."),
      h("p", { class: "refresh" }, `Live: refreshes every ${REFRESH_MS / 1000} s.`));
  };
  await draw();
  every(REFRESH_MS, draw);
}

async function resetOffsetsDialog(group) {
  const topics = [...new Set(group.offsets.map((o) => o.topic))];
  const done = await dialog({
    title: `Reset offsets of ${group.group_id}`,
    okLabel: "Reset",
    danger: true,
    build: (body) => {
      const topic = h("input", { list: "reset-topics", value: topics[0] || "", "data-testid": "reset-topic" });
      const list = h("datalist", { id: "reset-topics" }, topics.map((t) => h("option", { value: t })));
      const to = h("select", { "data-testid": "reset-to" },
        [["earliest", "earliest"], ["latest", "latest"], ["offset", "offset"], ["timestamp", "time"]].map(([v, l]) => h("option", { value: v }, l)));
      const value = h("input", { placeholder: "offset, or time like 2026-01-31T12:00:00Z", "data-testid": "reset-value" });
      body.append(h("p", {}, "The group must have no active members. Every partition of the topic is moved."),
        list, ...field("Topic", topic), ...field("Move to", to), ...field("Offset or time (for offset / time)", value));
      return () => {
        const request = { topic: topic.value.trim(), to: to.value };
        if (!request.topic) throw new Error("Choose a topic.");
        if (to.value === "offset") {
          if (!/^\d+$/.test(value.value.trim())) throw new Error("Enter an offset (a whole number).");
          request.offset = Number(value.value.trim());
        }
        if (to.value === "timestamp") {
          const ms = Date.parse(value.value.trim());
          if (isNaN(ms)) throw new Error("Enter a time, e.g. 2026-01-31T12:00:00Z.");
          request.timestamp_ms = ms;
        }
        return request;
      };
    },
    action: (request) => sendJson("POST", `/api/groups/${encodeURIComponent(group.group_id)}/reset-offsets`, request),
  });
  if (done) route();
}

// ------------------------------------------------------------------ router

async function route() {
  routeToken++;
  timers.forEach(clearTimeout);
  timers = [];
  const { parts, params } = parseHash();
  const section = parts[0] || "overview";
  document.querySelectorAll("[data-nav]").forEach((a) => a.classList.toggle("active", a.dataset.nav === section));
  try {
    if (parts.length === 0) await renderOverview();
    else if (parts[0] === "topics" && parts.length === 1) await renderTopics(params);
    else if (parts[0] === "topics" && parts.length === 2) await renderTopic(parts[1]);
    else if (parts[0] === "topics" && parts[2] === "messages") await renderMessages(parts[1], params);
    else if (parts[0] === "groups" && parts.length === 1) await renderGroups();
    else if (parts[0] === "groups" && parts.length === 2) await renderGroup(parts[1]);
    else if (parts[0] === "charts" && parts.length === 1) await renderCharts(params);
    else if (parts[0] === "schemas" && parts.length === 1) await renderSchemas();
    else if (parts[0] === "schemas" && parts.length === 2) await renderSchema(parts[1], params);
    else showError(new Error(`No page at ${location.hash}`));
  } catch (error) {
    showError(error);
  }
}

window.addEventListener("hashchange", route);
refreshHealth();
setInterval(refreshHealth, 5000);
route();
