// Strom console: the Schemas page (the schema registry built into the broker). Subjects
// with their versions and compatibility level; one subject's versions with their schema
// text and a line diff between any two. Reads /api/schemas; uses app.js's helpers.
"use strict";

// The schema text as lines: JSON (Avro, JSON Schema) pretty-printed, Protobuf as is.
function schemaLines(text) {
  try { return JSON.stringify(JSON.parse(text), null, 2).split("\n"); } catch (_) { return String(text || "").split("\n"); }
}

// A line diff (longest common subsequence): [{op: " " | "-" | "+", line}].
function diffLines(a, b) {
  const n = a.length, m = b.length;
  const lcs = Array.from({ length: n + 1 }, () => new Int32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const out = [];
  let i = 0, j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) { out.push({ op: " ", line: a[i] }); i++; j++; }
    else if (lcs[i + 1][j] >= lcs[i][j + 1]) out.push({ op: "-", line: a[i++] });
    else out.push({ op: "+", line: b[j++] });
  }
  while (i < n) out.push({ op: "-", line: a[i++] });
  while (j < m) out.push({ op: "+", line: b[j++] });
  return out;
}

async function renderSchemas() {
  const body = h("div", {});
  setChildren(view, h("h1", {}, "Schemas"), body);
  const draw = async () => {
    const data = await api("/api/schemas");
    setChildren(body,
      h("div", { class: "cards" },
        card("Subjects", fmtNumber(data.subjects.length), { testid: "schema-subjects" }),
        card("Global compatibility", data.global_compatibility, { small: true, testid: "schema-global-level" })),
      data.subjects.length
        ? table(["Subject", "Type", { label: "Versions", num: true }, { label: "Latest", num: true },
          { label: "Schema id", num: true }, "Compatibility"],
          data.subjects.map((s) => h("tr", { "data-testid": "schema-row" },
            td(h("a", { href: `#/schemas/${encodeURIComponent(s.subject)}` }, s.subject)),
            td(s.schema_type || "–"),
            td(fmtNumber(s.versions.length), { num: true }),
            td(s.latest_version, { num: true }),
            td(s.latest_id, { num: true }),
            td(s.compatibility + (s.compatibility_own ? "" : " (global)"),
              { cls: s.compatibility_own ? "" : "muted" }))), { testid: "schemas-table" })
        : h("div", { class: "empty" }, "No schemas registered yet. Register one with `strom schema register` or a Confluent serializer."),
      h("p", { class: "refresh" }, `Live: refreshes every ${(REFRESH_MS * 2.5) / 1000} s.`));
  };
  await draw();
  every(REFRESH_MS * 2.5, draw);
}

async function renderSchema(subject, params) {
  const data = await api(`/api/schemas/${encodeURIComponent(subject)}`);
  const versions = data.versions;
  const numbers = versions.map((v) => v.version);
  const pick = (name, fallback) => {
    const wanted = Number(params.get(name));
    return numbers.includes(wanted) ? wanted : fallback;
  };
  const latest = numbers[numbers.length - 1];
  const to = pick("to", latest);
  const from = pick("from", numbers.length > 1 ? numbers[numbers.length - 2] : latest);
  const byNumber = (n) => versions.find((v) => v.version === n);
  const select = (name, value) => h("select", {
    "data-testid": `diff-${name}`,
    onchange: (event) => {
      const next = new URLSearchParams(params);
      next.set(name, event.target.value);
      go(["schemas", subject], next);
    },
  }, numbers.map((n) => h("option", { value: n, selected: n === value }, `version ${n}`)));
  const left = byNumber(from), right = byNumber(to);
  const diff = diffLines(schemaLines(left.schema), schemaLines(right.schema));
  const changed = diff.filter((d) => d.op !== " ").length;
  setChildren(view,
    h("p", {}, h("a", { href: "#/schemas" }, "Schemas"), " / "),
    h("h1", {}, subject),
    h("div", { class: "cards" },
      card("Versions", fmtNumber(versions.length), { testid: "schema-versions" }),
      card("Compatibility", data.compatibility + (data.compatibility_own ? "" : " (global)"),
        { small: true, testid: "schema-level" }),
      card("Type", right.schema_type || "–", { small: true })),
    h("h2", {}, "Versions"),
    table([{ label: "Version", num: true }, { label: "Schema id", num: true }, "Type", "References"],
      versions.map((v) => h("tr", { "data-testid": "version-row" },
        td(v.version, { num: true }), td(v.id, { num: true }), td(v.schema_type || "–"),
        td((v.references || []).map((r) => `${r.name} → ${r.subject} v${r.version}`).join(", ") || "–"))),
      { testid: "versions-table" }),
    h("h2", {}, "Diff"),
    h("p", {}, "From ", select("from", from), " to ", select("to", to), " ",
      h("span", { class: "muted", "data-testid": "diff-summary" },
        changed ? `${changed} changed line${changed === 1 ? "" : "s"}` : "identical")),
    h("pre", { class: "mono diff", "data-testid": "schema-diff" },
      diff.map((d) => h("div", { class: d.op === "+" ? "ok" : d.op === "-" ? "error" : "" }, `${d.op} ${d.line}`))));
}
