// Browser test of the management dashboard (Debian chromium driven by playwright-core, the
// chat tests' copy in chat-web/browser/node_modules). Starts the real binary on loopback
// ports with a temporary data directory, logs in as guest, publishes through the page, sees
// the queue fill, gets, purges and deletes it, and checks the phone layout.
// Usage: node dashboard.test.mjs [path/to/warren] [screenshot dir]
import { createRequire } from "node:module";
import { spawn } from "node:child_process";
import { connect } from "node:net";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import assert from "node:assert/strict";

const require = createRequire(new URL("../../chat-web/browser/package.json", import.meta.url));
const { chromium } = require("playwright-core");

const bin = process.argv[2] || process.env.WARREN_BIN || join(process.env.CARGO_TARGET_DIR || "target", "debug", "warren");
const shots = resolve(process.argv[3] || "target/dashboard-screenshots");
mkdirSync(shots, { recursive: true });
const T = { timeout: 15000 };
const suffix = Math.random().toString(16).slice(2, 8);
const queue = `dash <b>q</b> ${suffix}`; // a name that would be markup if put in as HTML
const busy = `dash-busy-${suffix}`;
const exchange = `dash-x-${suffix}`;
const payload = `hello dashboard <img src=x> ${suffix}`;
let passed = 0;
function log(s) { passed++; console.log("ok - " + s); }

// ---- the broker --------------------------------------------------------------------------
const data = mkdtempSync(join(tmpdir(), "warren-dashboard-"));
const child = spawn(bin, ["--no-chat", "--amqp-bind", "127.0.0.1:0", "--management-bind", "127.0.0.1:0", "--data-dir", data],
  { stdio: ["ignore", "pipe", "pipe"] });
process.on("exit", () => child.kill("SIGTERM")); // never leave the broker behind
let output = "";
let amqpPort = 0;
const base = await new Promise((ok, fail) => {
  const timer = setTimeout(() => fail(new Error("warren did not report its addresses:\n" + output)), 20000);
  const seen = (chunk) => {
    output += chunk;
    const m = output.match(/management API on (http:\/\/[0-9.:]+)/);
    const a = output.match(/AMQP listening on ([0-9.]+):([0-9]+)/);
    if (m && a) { clearTimeout(timer); amqpPort = Number(a[2]); ok(m[1]); }
  };
  child.stdout.on("data", seen);
  child.stderr.on("data", seen);
  child.on("exit", (code) => { clearTimeout(timer); fail(new Error(`warren exited (${code}):\n${output}`)); });
});
console.log(`# warren management on ${base}; screenshots in ${shots}`);

const guest = "Basic " + Buffer.from("guest:guest").toString("base64");
async function api(method, path, body) {
  const resp = await fetch(base + "/api" + path, {
    method, headers: { authorization: guest, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await resp.text();
  return { status: resp.status, json: text ? JSON.parse(text) : null };
}
const q = (name) => `/queues/%2F/${encodeURIComponent(name)}`;

// A bare AMQP 0-9-1 client, just enough to open a connection (guest, vhost "/") for the
// connections table and its Close button. Resolves with the socket and a promise of its end.
function amqpConnection(product) {
  const short = (s) => Buffer.concat([Buffer.from([Buffer.byteLength(s)]), Buffer.from(s)]);
  const long = (b) => { const n = Buffer.alloc(4); n.writeUInt32BE(b.length); return Buffer.concat([n, b]); };
  const method = (cls, id, args) => {
    const payload = Buffer.concat([Buffer.from([cls >> 8, cls & 255, id >> 8, id & 255]), ...args]);
    const head = Buffer.from([1, 0, 0, 0, 0, 0, 0]);
    head.writeUInt32BE(payload.length, 3);
    return Buffer.concat([head, payload, Buffer.from([0xce])]);
  };
  const props = Buffer.concat([short("product"), Buffer.from("S"), long(Buffer.from(product))]);
  const tune = Buffer.alloc(8);
  tune.writeUInt16BE(16, 0); tune.writeUInt32BE(131072, 2); tune.writeUInt16BE(0, 6);
  return new Promise((ok, fail) => {
    const sock = connect(amqpPort, "127.0.0.1");
    let got = Buffer.alloc(0);
    const ended = new Promise((done) => sock.on("close", () => done(got)));
    sock.on("error", fail);
    sock.on("data", (d) => {
      got = Buffer.concat([got, d]);
      // connection.open-ok is class 10, method 41
      if (got.includes(Buffer.from([0, 10, 0, 41]))) ok({ sock, ended });
    });
    sock.write(Buffer.concat([Buffer.from("AMQP\x00\x00\x09\x01", "latin1"),
      method(10, 11, [long(props), short("PLAIN"), long(Buffer.from("\0guest\0guest")), short("en_US")]),
      method(10, 31, [tune]),
      method(10, 40, [short("/"), short(""), Buffer.from([0])])]));
  });
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
let step = 0;
async function shot(page, name) {
  await page.screenshot({ path: join(shots, `${String(++step).padStart(2, "0")}-${name}.png`), fullPage: true });
}
function watch(page) {
  page.on("pageerror", (e) => { console.error("page error:", e); process.exitCode = 1; });
  page.on("console", (m) => {
    if (m.type() === "error" && !/status of (400|401|404)/.test(m.text())) { console.error("console error:", m.text()); process.exitCode = 1; }
  });
  page.on("dialog", (d) => { console.error("unexpected browser dialog:", d.message()); process.exitCode = 1; d.dismiss(); });
}
async function login(page, user, pass) {
  await page.goto(base + "/");
  await page.waitForSelector("#login:not([hidden])", T);
  await page.fill("#login-user", user);
  await page.fill("#login-pass", pass);
  await page.click("#login button[type=submit]");
}
const rowOf = (page, table, name) =>
  page.locator(`#table-${table} tbody tr`).filter({ has: page.locator('td[data-col="Name"]', { hasText: name }) });
const cell = (page, table, name, col) => rowOf(page, table, name).locator(`td[data-col="${col}"]`);
async function noOverflow(page, what) {
  const { sw, iw } = await page.evaluate(() => ({ sw: document.documentElement.scrollWidth, iw: window.innerWidth }));
  assert.ok(sw <= iw, `${what}: the page is ${sw}px wide in a ${iw}px viewport`);
}

try {
  // headers of the page and its files
  const index = await fetch(base + "/");
  assert.equal(index.status, 200);
  assert.match(index.headers.get("content-type"), /^text\/html/);
  assert.equal(index.headers.get("content-security-policy"),
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'");
  assert.equal(index.headers.get("x-content-type-options"), "nosniff");
  assert.match((await fetch(base + "/dashboard.js")).headers.get("content-type"), /^text\/javascript/);
  assert.match((await fetch(base + "/dashboard.css")).headers.get("content-type"), /^text\/css/);
  log("page, script and stylesheet served with their types, CSP and nosniff");

  const desk = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await desk.newPage();
  watch(page);

  await login(page, "guest", "wrong-password");
  await page.waitForSelector("#login-error:not([hidden])", T);
  assert.ok((await page.textContent("#login-error")).length > 0);
  assert.ok(await page.isHidden("#app"));
  log("a wrong password shows the login form again with the error");

  await login(page, "guest", "guest");
  await page.waitForSelector("#app:not([hidden])", T);
  assert.equal(await page.textContent("#whoami"), "guest");
  log("logs in as guest");

  assert.equal((await api("PUT", q(queue), { durable: false })).status, 201);
  assert.equal((await api("PUT", q(busy), { durable: false })).status, 201);
  assert.equal((await api("PUT", `/exchanges/%2F/${exchange}`, { type: "fanout" })).status, 201);
  for (let i = 0; i < 5; i++) {
    await api("POST", "/exchanges/%2F/amq.default/publish",
      { routing_key: busy, payload: `m${i}`, payload_encoding: "string", properties: {} });
  }
  log("queues and an exchange declared through the API");

  // publish through the page to the default exchange, routed to the queue
  await page.click('#nav a[data-tab="exchanges"]');
  await page.waitForSelector("#tab-exchanges:not([hidden])", T);
  await rowOf(page, "exchanges", "(AMQP default)").locator('button:has-text("Publish")').click(T);
  await page.fill("#publish-key", queue);
  await page.fill("#publish-payload", payload);
  await page.click("#publish-form button[type=submit]");
  await page.waitForFunction(() => document.getElementById("notice").textContent === "Message published.", null, T);
  log("publishes a message through the dashboard's form");

  await page.click('#nav a[data-tab="queues"]');
  await page.waitForSelector("#tab-queues:not([hidden])", T);
  await cell(page, "queues", queue, "Ready").filter({ hasText: /^1$/ }).waitFor(T);
  assert.equal(await page.locator("#table-queues b").count(), 0, "the queue's name is text, not markup");
  log("the queue's ready count becomes 1");

  // sorting: by Ready, ascending then descending
  const names = async () => page.$$eval('#table-queues tbody td[data-col="Name"]', (tds) => tds.map((t) => t.textContent));
  await page.click('#table-queues th button:has-text("Ready")');
  assert.equal(await page.getAttribute('#table-queues th:nth-child(4)', "aria-sort"), "ascending");
  assert.deepEqual(await names(), [queue, busy]);
  await page.click('#table-queues th button:has-text("Ready")');
  assert.equal(await page.getAttribute('#table-queues th:nth-child(4)', "aria-sort"), "descending");
  assert.deepEqual(await names(), [busy, queue]);
  await page.fill("#filter-queues", suffix + "X");
  await page.waitForSelector('#table-queues td:has-text("Nothing matches the filter.")', T);
  await page.fill("#filter-queues", "busy");
  assert.deepEqual(await names(), [busy]);
  await page.fill("#filter-queues", "");
  log("the queue table sorts by a clicked column and filters by name");

  await rowOf(page, "queues", queue).locator('button:has-text("Get")').click(T);
  await page.click("#get-form button[type=submit]");
  await page.waitForSelector("#get-result .payload", T);
  assert.equal(await page.textContent("#get-result .payload"), payload);
  assert.equal(await page.locator("#get-result img").count(), 0, "the payload is text, not markup");
  await shot(page, "desktop-queues-get");
  log("gets the message and shows its payload");

  await rowOf(page, "queues", queue).locator('button:has-text("Purge")').click(T);
  await cell(page, "queues", queue, "Ready").filter({ hasText: /^0$/ }).waitFor(T);
  assert.equal((await api("GET", q(queue))).json.messages, 0);
  log("purges the queue");

  await rowOf(page, "queues", queue).locator('button:has-text("Delete")').click(T);
  await page.waitForSelector("#confirm[open]", T);
  assert.match(await page.textContent("#confirm-text"), /Delete the queue/);
  await shot(page, "desktop-confirm-delete");
  await page.click("#confirm-no");
  assert.equal((await api("GET", q(queue))).status, 200, "cancel keeps the queue");
  await rowOf(page, "queues", queue).locator('button:has-text("Delete")').click(T);
  await page.click("#confirm-yes");
  await rowOf(page, "queues", queue).waitFor({ state: "detached", ...T });
  assert.equal((await api("GET", q(queue))).status, 404);
  log("deletes the queue after the in-page confirmation (cancel keeps it)");

  // an API error is shown in the page: publish to an exchange deleted behind the page's back
  await page.click('#nav a[data-tab="exchanges"]');
  await rowOf(page, "exchanges", exchange).locator('button:has-text("Publish")').click(T);
  assert.equal((await api("DELETE", `/exchanges/%2F/${exchange}`)).status, 204);
  await page.fill("#publish-key", "k");
  await page.click("#publish-form button[type=submit]");
  await page.waitForSelector("#error:not([hidden])", T);
  assert.match(await page.textContent("#error-text"), /not.?found|NOT_FOUND|no exchange/i);
  await page.click("#error-close");
  log("an API error shows its reason in the page");

  // close a connection from the connections table
  const product = `dash-client-${suffix}`;
  const conn = await amqpConnection(product);
  await page.click('#nav a[data-tab="connections"]');
  const connRow = page.locator("#table-connections tbody tr").filter({ has: page.locator('td[data-col="Client"]', { hasText: product }) });
  await connRow.waitFor(T);
  await connRow.locator('button:has-text("Close")').click();
  await page.click("#confirm-yes");
  await connRow.waitFor({ state: "detached", ...T });
  const last = await Promise.race([conn.ended, new Promise((r) => setTimeout(() => r(null), 10000))]);
  assert.ok(last && last.includes(Buffer.from([0, 10, 0, 50])), "the client got connection.close");
  log("closes a connection (the client gets connection.close)");

  // the overview: totals and both charts, after a few samples
  await page.click('#nav a[data-tab="overview"]');
  await page.waitForSelector("#tab-overview:not([hidden])", T);
  await page.waitForFunction(() => document.querySelectorAll("#chart-rates polyline").length === 3 &&
    document.querySelectorAll("#chart-queued polyline").length === 2, null, T);
  const pts = () => page.$eval("#chart-queued polyline", (p) => p.getAttribute("points").split(" ").length);
  const before = await pts();
  await page.waitForFunction((n) => document.querySelector("#chart-queued polyline").getAttribute("points").split(" ").length > n,
    before, { timeout: 12000 });
  assert.match(await page.textContent("#object-totals"), /Queues\s*1/);
  assert.match(await page.textContent("#queue-totals"), /Ready\s*5/);
  await shot(page, "desktop-overview");
  log("the overview shows totals and live charts (polled)");

  // the phone: collapsed navigation, no page-wide horizontal overflow
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, colorScheme: "dark" });
  const p = await phone.newPage();
  watch(p);
  await login(p, "guest", "guest");
  await p.waitForSelector("#app:not([hidden])", T);
  await p.waitForSelector("#chart-rates svg", T);
  assert.ok(await p.isVisible("#menu"), "the menu button shows on a phone");
  assert.ok(!(await p.isVisible('#nav a[data-tab="queues"]')), "the navigation is collapsed");
  await noOverflow(p, "overview");
  await shot(p, "phone-overview");
  for (const tab of ["queues", "exchanges", "connections", "channels"]) {
    await p.click("#menu");
    await p.click(`#nav a[data-tab="${tab}"]`);
    await p.waitForSelector(`#tab-${tab}:not([hidden])`, T);
    await p.waitForSelector(`#table-${tab} tbody tr`, T);
    await noOverflow(p, tab);
    if (tab === "queues" || tab === "exchanges") await shot(p, `phone-${tab}`);
  }
  log("on a 390 px phone the navigation collapses and nothing overflows the page");

  // traffic for a while, then the desktop overview again (the screenshot in docs/)
  const until = Date.now() + 25000;
  for (let i = 0; Date.now() < until; i++) {
    await api("POST", "/exchanges/%2F/amq.default/publish",
      { routing_key: busy, payload: `t${i}`, payload_encoding: "string", properties: {} });
    if (i % 3 === 0) await api("POST", `${q(busy)}/get`, { count: 1, ackmode: "ack_requeue_false", encoding: "auto" });
    await new Promise((r) => setTimeout(r, 100 + (i % 40) * 10));
  }
  await page.waitForSelector("#notice", { state: "hidden", ...T });
  await page.waitForTimeout(5500);
  assert.ok((await pts()) >= before + 5, "the charts keep their history");
  await shot(page, "desktop-overview-traffic");
  log("the charts keep the history while the page stays open");

  // a 401 later on (credentials no longer valid) brings the form back with the error
  await p.evaluate(() => sessionStorage.setItem("warren.dashboard.auth", "Basic " + btoa("guest:nope")));
  await p.waitForSelector("#login:not([hidden])", { timeout: 12000 });
  assert.ok(await p.isVisible("#login-error"));
  log("a 401 while polling shows the login form with the error");
} catch (e) {
  console.error("not ok -", e);
  process.exitCode = 1;
} finally {
  await browser.close();
  child.kill("SIGTERM");
  rmSync(data, { recursive: true, force: true });
}
console.log(`# ${passed} passed${process.exitCode ? ", FAILED" : ""}; screenshots in ${shots}`);
process.exit(process.exitCode || 0);
