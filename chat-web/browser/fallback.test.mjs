// Browser test of the fallback transport (issue 19): with WebSocket blocked in both pages (an
// init script replaces window.WebSocket with one that never opens, as behind a proxy that
// swallows the upgrade), the chat falls back by itself to Server-Sent Events plus POSTs within a
// few seconds and says so in its status; two users still send and receive; a dropped event
// stream reconnects and catches up on what was posted while it was down.
// Usage: node fallback.test.mjs http://127.0.0.1:8080 [screenshot dir]
import { launchChromium } from "./chromium.mjs";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import assert from "node:assert/strict";

const base = process.argv[2] || "http://127.0.0.1:8080";
const shots = process.argv[3] || "target/chat-screenshots";
mkdirSync(shots, { recursive: true });
const suffix = Math.random().toString(16).slice(2, 8);
const T = { timeout: 15000 };

// Runs in the page before app.js. Besides blocking WebSocket, it keeps a handle on the page's
// event streams so the test can drop them (`__drop`) and hold the reconnection off (`__hold`).
function blockWebSocket() {
  class NeverOpens {
    constructor(url) { this.url = url; this.readyState = 0; }
    send() { throw new DOMException("still connecting", "InvalidStateError"); }
    close() { this.readyState = 3; }
  }
  Object.assign(NeverOpens, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
  window.WebSocket = NeverOpens;
  const Real = window.EventSource;
  window.__streams = [];
  window.__hold = false;
  window.EventSource = class extends Real {
    constructor(url, opts) {
      // held: a URL that answers 404, as a server that cannot be reached yet
      super(window.__hold ? "/api/held" : url, opts);
      window.__streams.push(this);
    }
  };
  window.__drop = () => {
    window.__hold = true;
    for (const es of window.__streams) if (es.readyState !== 2) { es.close(); es.dispatchEvent(new Event("error")); }
  };
}

const browser = await launchChromium();
let step = 0;
async function shot(page, name) { await page.screenshot({ path: join(shots, `fallback-${String(++step).padStart(2, "0")}-${name}.png`), fullPage: true }); }
let passed = 0;
function log(s) { passed++; console.log("ok - " + s); }
const conn = (page) => page.textContent("#conn");
const onFallback = (page, timeout = T.timeout) =>
  page.waitForFunction(() => document.getElementById("conn").textContent === "connected · fallback", null, { timeout });
const visible = (page, text) => page.locator(`#messages li:has-text("${text}")`).waitFor({ ...T, state: "visible" });
async function say(page, text) { await page.fill("#composer-text", text); await page.press("#composer-text", "Enter"); }

/** A page of a new user `name`, WebSocket blocked, in the default room general. */
async function open(name) {
  const ctx = await browser.newContext({ viewport: { width: 1000, height: 700 } });
  await ctx.addInitScript(blockWebSocket);
  const page = await ctx.newPage();
  page.on("pageerror", (e) => { console.error(`${name}: page error:`, e); process.exitCode = 1; });
  await page.goto(base);
  await page.fill("#username", name);
  await page.fill("#password", "hunter2hunter2");
  const t0 = Date.now();
  await page.click("#register");
  await page.waitForSelector("#app:not([hidden])", T);
  await onFallback(page);
  const took = Date.now() - t0;
  await page.click('#my-rooms button[data-room="general"]', T);
  await page.waitForFunction(() => document.getElementById("room-title").textContent.includes("general"), null, T);
  return { page, took };
}

try {
  const alice = "alice-" + suffix, bob = "bob-" + suffix;
  const a = await open(alice);
  const b = await open(bob);
  assert.ok(a.took >= 2500 && a.took < 10000, `fell back after the WebSocket did not open in ~3 s (${a.took} ms)`);
  assert.equal(await a.page.getAttribute("#conn", "title"), "WebSocket is blocked on the way to the chat: using Server-Sent Events instead");
  await shot(a.page, "alice-on-fallback");
  log(`without WebSocket the page falls back by itself and says so (${a.took} ms, ${b.took} ms)`);

  await say(a.page, `hello over the fallback ${suffix}`);
  await visible(b.page, `hello over the fallback ${suffix}`);
  await a.page.locator(`#messages li:has-text("hello over the fallback ${suffix}") .status:not([data-status=sending])`).waitFor(T);
  await say(b.page, `and back ${suffix}`);
  await visible(a.page, `and back ${suffix}`);
  await b.page.waitForTimeout(2100); // one typing event per 2 s: the last went with "and back"
  await b.page.type("#composer-text", "typing over the fallback");
  await a.page.waitForFunction((n) => document.getElementById("typing").textContent.includes(n), bob, T);
  await b.page.fill("#composer-text", "");
  await shot(b.page, "bob-sees-alice");
  log("two users send and receive over Server-Sent Events + POST, typing included");

  // alice's stream drops and stays down while bob writes; back, she catches up
  await a.page.evaluate(() => window.__drop());
  await a.page.waitForFunction(() => document.getElementById("conn").textContent.startsWith("reconnecting"), null, T);
  await say(b.page, `while alice was away ${suffix}`);
  await b.page.locator(`#messages li:has-text("while alice was away ${suffix}") .status:not([data-status=sending])`).waitFor(T);
  await a.page.waitForTimeout(1000);
  assert.equal(await a.page.locator(`#messages li:has-text("while alice was away ${suffix}")`).count(), 0, "not before the reconnect");
  assert.match(await conn(a.page), /^reconnecting/);
  await shot(a.page, "alice-disconnected");
  await a.page.evaluate(() => { window.__hold = false; });
  await onFallback(a.page, 20000);
  await visible(a.page, `while alice was away ${suffix}`);
  assert.equal(await a.page.locator(`#messages li:has-text("while alice was away ${suffix}")`).count(), 1, "once");
  await say(a.page, `back again ${suffix}`);
  await visible(b.page, `back again ${suffix}`);
  await shot(a.page, "alice-caught-up");
  log("a dropped event stream reconnects and catches up on what was posted meanwhile");
  console.log(`fallback: ${passed} passed`);
} catch (e) {
  console.error(e);
  process.exitCode = 1;
} finally {
  await browser.close();
}
