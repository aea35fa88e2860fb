// Browser test of warren's web chat: two users in two browser contexts (Debian chromium driven
// by playwright-core). Usage: node chat.test.mjs http://127.0.0.1:8080 [screenshot dir]
// CHAT_BROKER_CTL: the broker's control command (`warren ctl --data-dir D`, or rabbitmqctl),
// used to make the broker drop every connection.
import { chromium } from "playwright-core";
import { execSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import assert from "node:assert/strict";

const base = process.argv[2] || "http://127.0.0.1:8080";
const shots = process.argv[3] || "target/chat-screenshots";
mkdirSync(shots, { recursive: true });
const suffix = Math.random().toString(16).slice(2, 8);
const alice = "alice-" + suffix, bob = "bob-" + suffix, lobby = "lobby " + suffix;
const T = { timeout: 15000 };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
let step = 0;
async function shot(page, name) { await page.screenshot({ path: join(shots, `${String(++step).padStart(2, "0")}-${name}.png`), fullPage: true }); }
let passed = 0;
function log(s) { passed++; console.log("ok - " + s); }

try {
  const ca = await browser.newContext({ viewport: { width: 1000, height: 700 } });
  const cb = await browser.newContext({ viewport: { width: 390, height: 800 }, colorScheme: "dark" }); // phone width, dark
  const a = await ca.newPage();
  let b = await cb.newPage();
  for (const p of [a, b]) p.on("pageerror", (e) => { console.error("page error:", e); process.exitCode = 1; });

  async function register(page, name) {
    await page.goto(base);
    await page.fill("#username", name);
    await page.fill("#password", "hunter2hunter2");
    await page.click("#register");
    await page.waitForSelector("#app:not([hidden])", T);
    await page.waitForFunction(() => document.getElementById("conn").textContent === "connected", null, T);
  }
  await register(a, alice);
  await register(b, bob);
  await shot(b, "bob-registered-phone-dark");
  log("two users register");

  // alice creates a public room, bob joins it from the public list
  await a.fill("#new-room-name", lobby);
  await a.click("#new-room button[type=submit]");
  await a.waitForFunction((n) => document.getElementById("room-title").textContent.includes(n), lobby, T);
  await b.reload();
  await b.click("#menu");
  await b.click(`#public-rooms button:has-text("${lobby}")`, T);
  await b.waitForFunction((n) => document.getElementById("room-title").textContent.includes(n), lobby, T);
  log("public room created and joined");

  // chat, with markdown and an XSS payload that must render as text
  const xss = `<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>`;
  await a.fill("#composer-text", "hello **bob** and `code`");
  await a.press("#composer-text", "Enter");
  await a.fill("#composer-text", xss);
  await a.press("#composer-text", "Enter");
  await b.waitForSelector(`#messages li:has-text("onerror")`, T);
  const strong = await b.textContent("#messages li strong");
  assert.equal(strong, "bob");
  assert.equal(await b.locator("#messages img, #messages script").count(), 0, "no HTML from messages");
  assert.equal(await b.evaluate(() => window.pwned), undefined);
  assert.ok((await b.textContent("#messages")).includes(xss), "payload shown as text");
  await a.waitForSelector('#messages li.mine .status[data-status="read"], #messages li.mine .status[data-status="delivered"]', T);
  await shot(a, "alice-public-room");
  await shot(b, "bob-public-room");
  log("messages, markdown, XSS rendered as text, receipts");

  // presence and typing
  await a.waitForSelector(`#people button[data-user="${bob}"][data-status="online"]`, T);
  await b.type("#composer-text", "typing...");
  await a.waitForFunction((n) => document.getElementById("typing").textContent.includes(n), bob, T);
  await shot(a, "alice-sees-typing");
  await b.fill("#composer-text", "");
  log("presence and typing");

  // 1:1 chat
  await a.click(`#people button[data-user="${bob}"]`);
  await a.waitForFunction((n) => document.getElementById("room-title").textContent.includes("@ " + n), bob, T);
  await a.fill("#composer-text", "psst, private");
  await a.press("#composer-text", "Enter");
  await b.click("#menu");
  await b.click(`#my-rooms button:has-text("@ ${alice}")`, T);
  await b.waitForSelector(`#messages li:has-text("psst, private")`, T);
  await shot(b, "bob-direct-chat");
  log("1:1 chat");

  // bob leaves; alice writes in the lobby; bob comes back to the missed messages
  await b.close();
  await a.waitForSelector(`#people button[data-user="${bob}"][data-status="offline"]`, T);
  await a.click("#menu").catch(() => {});
  await a.click(`#my-rooms button:has-text("${lobby}")`);
  for (const t of ["while you were away 1", "while you were away 2"]) {
    await a.fill("#composer-text", t);
    await a.press("#composer-text", "Enter");
    await a.waitForSelector(`#messages li:has-text("${t}") .status[data-status="sent"]`, T);
  }
  b = await cb.newPage();
  await b.goto(base);
  await b.waitForFunction(() => document.getElementById("conn").textContent === "connected", null, T);
  await b.click("#menu");
  const badge = b.locator(`#my-rooms li:has(button:has-text("${lobby}")) .badge`);
  await badge.waitFor(T);
  assert.equal(await badge.textContent(), "2", "unread count");
  await shot(b, "bob-back-with-unread");
  await b.click(`#my-rooms button:has-text("${lobby}")`);
  await b.waitForSelector(`#messages li:has-text("while you were away 2")`, T);
  await a.waitForSelector(`#people button[data-user="${bob}"][data-status="online"]`, T);
  await shot(b, "bob-caught-up");
  log("offline catch-up with unread count");

  // the broker drops every connection (CHAT_BROKER_CTL: warren ctl or rabbitmqctl): the chat
  // reconnects to the broker, and both pages to the chat, by themselves
  const conn = (page) => page.evaluate(() => document.getElementById("conn").textContent);
  execSync(`${process.env.CHAT_BROKER_CTL} close_all_connections "browser test"`, { stdio: "inherit" });
  for (const p of [a, b]) {
    await p.waitForFunction(() => document.getElementById("conn").textContent !== "connected", null, { ...T, polling: 20 });
    assert.match(await conn(p), /reconnecting/);
  }
  // bob writes while his page is still reconnecting: it goes out once the page is back
  await b.fill("#composer-text", "written while reconnecting");
  await b.press("#composer-text", "Enter");
  for (const p of [a, b]) {
    await p.waitForFunction(() => document.getElementById("conn").textContent === "connected", null, { timeout: 30000 });
  }
  await a.waitForSelector(`#messages li:has-text("written while reconnecting")`, T);
  await a.fill("#composer-text", "after the broker dropped us");
  await a.press("#composer-text", "Enter");
  // confirmed by the broker ("sent"), or already further along ("delivered", "read": bob is looking)
  await a.waitForSelector(`#messages li:has-text("after the broker dropped us") .status:not([data-status="sending"])`, T);
  await b.waitForSelector(`#messages li:has-text("after the broker dropped us")`, T);
  await shot(b, "bob-after-broker-reconnect");
  log("broker drops the connections: the pages reconnect by themselves");
} catch (e) {
  console.error("not ok - " + (e && e.stack ? e.stack : e));
  process.exitCode = 1;
} finally {
  await browser.close();
  // the plain summary line CI reads
  console.log(`browser: ${passed} passed, ${process.exitCode ? 1 : 0} failed`);
}
