// Browser tests of the Strom web console against a real broker, in headless Debian Chromium
// driven by playwright-core. Each page is screenshotted into artifacts/ (gitignored).
//
//   STROM_BIN     broker binary (default: $CARGO_TARGET_DIR or ../../target, debug/strom)
//   CHROMIUM_BIN  browser (default /usr/bin/chromium)
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { commitOffsets } from "./kafka_commit.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../..");
const targetDir = process.env.CARGO_TARGET_DIR || path.join(repo, "target");
const STROM = process.env.STROM_BIN || path.join(targetDir, "debug", "strom");
const CHROMIUM = process.env.CHROMIUM_BIN || "/usr/bin/chromium";
const ARTIFACTS = path.join(here, "artifacts");
const TOPIC = "console-demo";
const GROUP = "console-readers";
const LOAD_TOPICS = 1000;

let broker;
let brokerLog = "";
let dataDir;
let kafkaPort;
let httpPort;
let registryPort;
let base;
let browser;
let page;

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function cli(args, input) {
  return execFileSync(STROM, [...args, "--bootstrap-server", `127.0.0.1:${kafkaPort}`], {
    input,
    encoding: "utf8",
    stdio: ["pipe", "pipe", "pipe"],
    timeout: 30000,
  });
}

async function waitFor(what, check, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch (_) { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\nbroker log:\n${brokerLog}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function shot(name) {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

async function openHash(hash) {
  await page.goto(`${base}/#${hash}`);
}

before(async () => {
  assert.ok(fs.existsSync(STROM), `no broker binary at ${STROM} (cargo build -p strom, or set STROM_BIN)`);
  assert.ok(fs.existsSync(CHROMIUM), `no Chromium at ${CHROMIUM} (apt-get install chromium)`);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "strom-console-"));
  kafkaPort = await freePort();
  httpPort = await freePort();
  registryPort = await freePort();
  base = `http://127.0.0.1:${httpPort}`;
  broker = spawn(STROM, [
    "broker",
    "--set", `log.dirs=${dataDir}`,
    "--set", `listeners=PLAINTEXT://127.0.0.1:${kafkaPort}`,
    "--set", `http.listener=127.0.0.1:${httpPort}`,
    "--set", `schema.registry.listener=127.0.0.1:${registryPort}`,
  ], { stdio: ["ignore", "ignore", "pipe"] });
  broker.stderr.on("data", (chunk) => { brokerLog += chunk; });
  await waitFor("the HTTP endpoint", async () => (await fetch(`${base}/health`)).ok);

  // The topic and a message come from the operator CLI, as a user would make them.
  cli(["topic", "create", TOPIC, "--partitions", "2"]);
  cli(["produce", TOPIC, "--partition", "0", "--key-separator", "|", "--header", "source=cli", "--header", "trace=abc"],
    'order-1|{"order":1,"item":"book","qty":2}\norder-2|plain text value\n');
  cli(["produce", TOPIC, "--partition", "1"], Array.from({ length: 10 }, (_, i) => `event-${i}`).join("\n") + "\n");

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  page.on("pageerror", (error) => { throw error; });
});

after(async () => {
  if (browser) await browser.close();
  if (broker && broker.exitCode === null) {
    process.kill(broker.pid, "SIGKILL");
  }
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

test("overview shows a ready cluster with its topic", async () => {
  await openHash("/");
  await page.getByTestId("overview-health").getByText("ready").waitFor();
  const topics = await page.getByTestId("overview-topics").locator(".value").textContent();
  assert.equal(topics.trim(), "1");
  await page.getByTestId("health").getByText("ready").waitFor();
  await shot("01-overview");
});

test("topic list shows the CLI-created topic and filters", async () => {
  await openHash("/topics");
  const row = page.getByTestId("topic-row").filter({ hasText: TOPIC });
  await row.waitFor();
  assert.match(await row.textContent(), /2/);
  await page.getByTestId("topic-filter").fill("no-such-topic");
  await page.getByText("No topic matches").waitFor();
  await page.getByTestId("topic-filter").fill("demo");
  await page.getByTestId("topic-row").filter({ hasText: TOPIC }).waitFor();
  // Throughput: records produced between two refreshes show up as a rate.
  cli(["produce", TOPIC, "--partition", "1"], Array.from({ length: 20 }, (_, i) => `burst-${i}`).join("\n") + "\n");
  const inCell = page.getByTestId("topic-row").filter({ hasText: TOPIC }).locator("td").nth(5);
  await waitFor("a produce rate", async () => /^[\d.,]+ msg\/s$/.test((await inCell.textContent()).trim())
    && (await inCell.textContent()).trim() !== "0.0 msg/s", 15000);
  await shot("02-topics");
});

test("topic detail lists partitions with leader, replicas, ISR and offsets, and configs", async () => {
  await openHash(`/topics/${TOPIC}`);
  await page.getByTestId("topic-name").getByText(TOPIC).waitFor();
  const rows = page.getByTestId("partition-row");
  await waitFor("two partition rows", async () => (await rows.count()) === 2);
  const cells = await rows.nth(1).locator("td").allTextContents();
  // partition, leader, epoch, replicas, isr, log start, log end, size
  assert.deepEqual(cells.slice(0, 7), ["1", "1", "0", "1", "1", "0", "30"]);
  await page.getByTestId("configs-table").getByRole("cell", { name: "retention.ms", exact: true }).waitFor();
  await shot("03-topic-detail");
});

test("message browser shows key, value as text, JSON and hex, headers and timestamp", async () => {
  await openHash(`/topics/${TOPIC}/messages?partition=0&mode=offset&offset=0`);
  const first = page.locator('[data-testid="message"][data-offset="0"]');
  await first.waitFor();
  assert.equal((await first.getByTestId("message-key").locator("pre").textContent()).trim(), "order-1");
  assert.equal(
    (await first.getByTestId("message-value").locator("pre").textContent()).trim(),
    '{"order":1,"item":"book","qty":2}',
  );
  const headers = await first.getByTestId("message-headers").textContent();
  assert.match(headers, /source/);
  assert.match(headers, /cli/);
  assert.match(headers, /trace/);
  const timestamp = await first.getByTestId("message-timestamp").textContent();
  assert.match(timestamp, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC$/);
  await shot("04-messages-text");

  await page.getByTestId("browse-format").selectOption("json");
  await page.locator('[data-testid="message"][data-offset="0"] pre[data-format="json"]').first().waitFor();
  const pretty = await page.locator('[data-testid="message"][data-offset="0"]').getByTestId("message-value").locator("pre").textContent();
  assert.match(pretty, /\{\n {2}"order": 1,\n {2}"item": "book",/);
  await shot("05-messages-json");

  await page.getByTestId("browse-format").selectOption("hex");
  await page.locator('[data-testid="message"][data-offset="1"] pre[data-format="hex"]').first().waitFor();
  const hex = await page.locator('[data-testid="message"][data-offset="1"]').getByTestId("message-value").locator("pre").textContent();
  // "plain text value" = 70 6c 61 69 6e ...
  assert.match(hex, /^00000000 {2}70 6c 61 69 6e 20 74 65 78 74 20 76 61 6c 75 65/);
  await shot("06-messages-hex");
});

test("message browser starts at a timestamp and pages forward", async () => {
  // Partition 1 holds event-0..9 (then burst-0..19); start at offset 4 with a page of 3.
  await openHash(`/topics/${TOPIC}/messages?partition=1&mode=offset&offset=4&limit=3`);
  await page.locator('[data-testid="message"][data-offset="4"]').waitFor();
  assert.equal(await page.getByTestId("message").count(), 3);
  await page.getByTestId("browse-next").click();
  await page.locator('[data-testid="message"][data-offset="7"]').waitFor();
  // From a time before everything: the first record.
  await openHash(`/topics/${TOPIC}/messages?partition=1&mode=timestamp&timestamp=2000-01-01T00:00:00&limit=2`);
  await page.locator('[data-testid="message"][data-offset="0"]').waitFor();
  assert.equal(
    (await page.locator('[data-testid="message"][data-offset="0"]').getByTestId("message-value").locator("pre").textContent()).trim(),
    "event-0",
  );
  await shot("07-messages-by-time");
});

test("consumer group lag falls live as the consumer commits", async () => {
  await commitOffsets(kafkaPort, GROUP, TOPIC, [[0, 0], [1, 22]]);
  await openHash("/groups");
  await page.getByTestId("group-row").filter({ hasText: GROUP }).waitFor();
  await shot("08-groups");
  await openHash(`/groups/${GROUP}`);
  const lag = page.getByTestId("group-lag").locator(".value");
  await waitFor("lag 10 (2 + 8)", async () => (await lag.textContent()).trim() === "10");
  await shot("09-group-lag-before");
  // The consumer catches up in two steps; the open page follows without a reload.
  await commitOffsets(kafkaPort, GROUP, TOPIC, [[0, 1], [1, 26]]);
  await waitFor("lag 5", async () => (await lag.textContent()).trim() === "5");
  await commitOffsets(kafkaPort, GROUP, TOPIC, [[0, 2], [1, 30]]);
  await waitFor("lag 0", async () => (await lag.textContent()).trim() === "0");
  const lags = await page.getByTestId("offset-lag").allTextContents();
  assert.deepEqual(lags, ["0", "0"]);
  await shot("10-group-lag-caught-up");
});

test("reset offsets goes through a confirmation and moves the lag back", async () => {
  await openHash(`/groups/${GROUP}`);
  await page.getByTestId("reset-offsets").click();
  await page.getByTestId("reset-to").selectOption("earliest");
  await shot("11-reset-offsets-dialog");
  await page.locator("#dialog-ok").click();
  const lag = page.getByTestId("group-lag").locator(".value");
  await waitFor("lag 32 after reset to earliest", async () => (await lag.textContent()).trim() === "32");
  await shot("12-group-after-reset");
});

test("create and delete a topic behind confirmation dialogs", async () => {
  await openHash("/topics");
  await page.getByTestId("create-topic").click();
  await page.getByTestId("new-topic-name").fill("made-in-console");
  await page.getByTestId("new-topic-partitions").fill("3");
  await page.getByTestId("new-topic-retention").fill("3600000");
  await shot("13-create-topic-dialog");
  await page.locator("#dialog-ok").click();
  await page.getByTestId("topic-name").getByText("made-in-console").waitFor();
  await waitFor("three partitions", async () => (await page.getByTestId("partition-row").count()) === 3);
  const retention = page.getByTestId("configs-table").locator("tr")
    .filter({ has: page.getByRole("cell", { name: "retention.ms", exact: true }) });
  assert.match(await retention.textContent(), /3600000\s*topic/);
  const listed = cli(["topic", "list"]);
  assert.match(listed, /made-in-console/);

  await page.getByTestId("delete-topic").click();
  await page.getByTestId("confirm-name").fill("wrong-name");
  await page.locator("#dialog-ok").click();
  await page.locator("#dialog-error").getByText("does not match").waitFor();
  await shot("14-delete-topic-dialog");
  await page.getByTestId("confirm-name").fill("made-in-console");
  await page.locator("#dialog-ok").click();
  await page.getByTestId("topic-total").waitFor();
  await waitFor("topic gone", async () => !/made-in-console/.test(cli(["topic", "list"])));
});

// The CLI without blocking the event loop (the browser is driven meanwhile).
function cliAsync(args, input) {
  return new Promise((resolve, reject) => {
    const child = spawn(STROM, [...args, "--bootstrap-server", `127.0.0.1:${kafkaPort}`],
      { stdio: ["pipe", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk) => { stderr += chunk; });
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve()
      : reject(new Error(`strom ${args.join(" ")} exited with ${code}: ${stderr}`))));
    child.stdin.end(input);
  });
}

// The y coordinates of a chart line's path ("M x,y L x,y ..."); the plot's zero line is at
// y = 166, so a point well above zero has y < 150.
function pathYs(d) {
  return [...(d || "").matchAll(/[ML][\d.]+,([\d.]+)/g)].map((m) => Number(m[1]));
}

function lastY(d) {
  const ys = pathYs(d);
  return ys.length ? ys[ys.length - 1] : Infinity;
}

test("history API refuses malformed parameters with a message", async () => {
  for (const [query, message] of [
    ["minutes=0", /1\.\.=15/], ["minutes=16", /1\.\.=15/], ["minutes=ten", /`minutes`/],
    ["minute=5", /unknown query parameter `minute`/], ["topic=a%2Fb", /topic name/],
  ]) {
    const response = await fetch(`${base}/api/history?${query}`);
    assert.equal(response.status, 400, query);
    assert.match((await response.json()).error, message, query);
  }
  const unknown = await fetch(`${base}/api/history?topic=no-such-topic`);
  assert.equal(unknown.status, 404);
  const ok = await (await fetch(`${base}/api/history?minutes=5&topic=${TOPIC}`)).json();
  assert.equal(ok.window_ms, 5 * 60000);
  assert.equal(ok.total.messages_in_per_s.length, ok.times_ms.length);
  assert.equal(ok.topic.name, TOPIC);
});

test("charts draw the broker's history and move while a producer runs", async () => {
  await openHash(`/charts?topic=${TOPIC}&group=${GROUP}`);
  const total = page.getByTestId("chart-total-messages");
  const line = total.locator("path.series").first();
  await line.waitFor();
  // A producer runs in the background: 50 records every 300 ms, until the charts moved.
  let producing = true;
  let produced = 0;
  const producer = (async () => {
    while (producing) {
      await cliAsync(["produce", TOPIC, "--partition", "0"],
        Array.from({ length: 50 }, (_, i) => `chart-${produced + i}`).join("\n") + "\n");
      produced += 50;
      await new Promise((r) => setTimeout(r, 300));
    }
  })();
  try {
    // The rate shows up at the right end (the last point is "now", since the last sample).
    await waitFor("a messages-in rate above zero now", async () =>
      lastY(await line.getAttribute("d")) < 150, 30000);
    const first = await line.getAttribute("d");
    const pointsBefore = Number(await total.locator("svg").getAttribute("data-points"));
    await shot("17-charts");
    // A kept 10 s sample arrives (one more point) and the line changes with it.
    await waitFor("a new sample in the chart", async () =>
      Number(await total.locator("svg").getAttribute("data-points")) > pointsBefore, 40000);
    const second = await line.getAttribute("d");
    assert.notEqual(second, first, "the chart did not move");
    assert.ok(lastY(second) < 150, `no rate above zero at the end of ${second}`);
  } finally {
    producing = false;
    await producer;
  }
  assert.ok(produced > 0);
  // Every chart is drawn, with the chosen topic and group.
  // (A flat line has an empty bounding box, so "attached" and the path's points, not "visible".)
  for (const id of ["chart-total-bytes", "chart-topic-rates", "chart-topic-messages", "chart-latency",
    "chart-lag-groups", "chart-lag-partitions", "chart-under-replicated"]) {
    const series = page.getByTestId(id).locator("path.series").first();
    await series.waitFor({ state: "attached" });
    assert.ok(pathYs(await series.getAttribute("d")).length > 0, `${id} has no points`);
  }
  assert.match(await page.getByTestId("chart-topic-rates").locator("figcaption").textContent(), new RegExp(TOPIC));
  assert.match(await page.getByTestId("chart-latency").locator(".legend").textContent(), /Produce/);
  assert.match(await page.getByTestId("chart-lag-groups").locator(".legend").textContent(), new RegExp(GROUP));
  assert.match(await page.getByTestId("chart-lag-partitions").locator(".legend").textContent(), new RegExp(`${TOPIC} \\[0\\]`));
  const topicBytes = await page.getByTestId("chart-topic-rates").locator("path.series").first().getAttribute("d");
  assert.ok(pathYs(topicBytes).some((y) => y < 150), `no bytes-in rate of ${TOPIC} in ${topicBytes}`);
  await shot("18-charts-moved");
});

test("the topic list stays usable with 1,000 topics (filter and pages)", async () => {
  const names = Array.from({ length: LOAD_TOPICS }, (_, i) => `load-${String(i).padStart(4, "0")}`);
  for (let i = 0; i < names.length; i += 25) {
    await Promise.all(names.slice(i, i + 25).map(async (name) => {
      const response = await fetch(`${base}/api/topics`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ name, partitions: 1 }),
      });
      assert.equal(response.status, 201, await response.text());
    }));
  }
  const started = Date.now();
  await openHash("/topics?internal=false");
  await page.getByTestId("topic-total").getByText(`${(LOAD_TOPICS + 1).toLocaleString("en-US")} matching`).waitFor();
  const loadMs = Date.now() - started;
  // The waitFor above fails only if the page never renders; the time is a figure.
  console.log(`FIGURE console_first_page_of_${LOAD_TOPICS + 1}_topics_ms=${loadMs}`);
  assert.equal(await page.getByTestId("topic-row").count(), 50);
  assert.equal((await page.getByTestId("page-info").textContent()).trim(), "page 1 of 21");
  await shot("15-topics-1000");
  await page.getByTestId("page-next").click();
  await page.getByTestId("page-info").getByText("page 2 of 21").waitFor();
  await page.getByTestId("topic-row").filter({ hasText: "load-0098" }).waitFor();
  await page.getByTestId("topic-filter").fill("load-09");
  await page.getByTestId("topic-total").getByText("100 matching").waitFor();
  assert.equal((await page.getByTestId("page-info").textContent()).trim(), "page 1 of 2");
  await shot("16-topics-1000-filtered");
  // The broker kept serving Kafka clients throughout.
  assert.match(cli(["topic", "describe", TOPIC]), new RegExp(TOPIC));
});

// Schemas page: subjects from the registry built into the broker, a subject's versions,
// its compatibility level, and a diff between two versions.
async function registry(method, pathname, body) {
  const response = await fetch(`http://127.0.0.1:${registryPort}${pathname}`, {
    method,
    headers: { "content-type": "application/vnd.schemaregistry.v1+json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  assert.equal(response.status, 200, `${method} ${pathname}: ${text}`);
  return JSON.parse(text);
}

test("schemas page lists subjects, versions and levels, and diffs two versions", async () => {
  const user = (fields) => JSON.stringify({ type: "record", name: "User", fields });
  const v1 = [{ name: "name", type: "string" }];
  const v2 = [...v1, { name: "email", type: ["null", "string"], default: null }];
  const v3 = [...v2, { name: "age", type: "int", default: 0 }];
  for (const fields of [v1, v2, v3]) {
    await registry("POST", `/subjects/${TOPIC}-value/versions`, { schema: user(fields) });
  }
  await registry("POST", "/subjects/orders-key/versions", { schema: JSON.stringify({ type: "string" }) });
  await registry("PUT", `/config/${TOPIC}-value`, { compatibility: "FULL" });

  await openHash("/schemas");
  const row = page.getByTestId("schema-row").filter({ hasText: `${TOPIC}-value` });
  await row.waitFor();
  const cells = await row.locator("td").allTextContents();
  assert.deepEqual(cells.slice(0, 4), [`${TOPIC}-value`, "AVRO", "3", "3"]);
  assert.equal(cells[5], "FULL");
  const other = await page.getByTestId("schema-row").filter({ hasText: "orders-key" }).locator("td").allTextContents();
  assert.equal(other[5], "BACKWARD (global)");
  assert.equal((await page.getByTestId("schema-subjects").locator(".value").textContent()).trim(), "2");
  await shot("19-schemas");

  await row.getByRole("link").click();
  await page.getByTestId("versions-table").waitFor();
  assert.equal(await page.getByTestId("version-row").count(), 3);
  assert.match(await page.getByTestId("schema-level").textContent(), /FULL/);
  // Latest against the one before: the `age` field is added.
  await waitFor("the default diff (2 -> 3)", async () => /changed line/.test(await page.getByTestId("diff-summary").textContent()));
  let diff = await page.getByTestId("schema-diff").textContent();
  assert.match(diff, /\+ .*"age"/);
  assert.doesNotMatch(diff, /\+ .*"email"/);
  await shot("20-schema-diff");
  // From version 1: both fields are added.
  await page.getByTestId("diff-from").selectOption("1");
  await waitFor("the diff from version 1", async () => /\+ .*"email"/.test(await page.getByTestId("schema-diff").textContent()));
  diff = await page.getByTestId("schema-diff").textContent();
  assert.match(diff, /\+ .*"age"/);
  await page.getByTestId("diff-to").selectOption("1");
  await page.getByTestId("diff-summary").getByText("identical").waitFor();

  // An unknown subject is a 404 with a message, shown as an error on the page.
  const unknown = await fetch(`${base}/api/schemas/no-such-subject`);
  assert.equal(unknown.status, 404);
  assert.match((await unknown.json()).error, /no-such-subject/);
  await openHash("/schemas/no-such-subject");
  await page.getByTestId("error").getByText(/no-such-subject/).waitFor();
});
