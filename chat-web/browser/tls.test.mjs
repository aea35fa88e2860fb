// Browser test of the chat over HTTPS and WSS: two users in two Chromium contexts log in on an
// https:// page served with a self-signed certificate (ignoreHTTPSErrors) and exchange a
// message over their wss:// sessions. Usage: node tls.test.mjs https://127.0.0.1:8443 [shots]
import { launchChromium } from "./chromium.mjs";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import assert from "node:assert/strict";

const base = process.argv[2] || "https://127.0.0.1:8443";
const shots = process.argv[3] || "target/chat-screenshots/tls";
assert.match(base, /^https:\/\//, "the TLS test needs an https:// URL");
mkdirSync(shots, { recursive: true });
const suffix = Math.random().toString(16).slice(2, 8);
const alice = "alice-" + suffix, bob = "bob-" + suffix, room = "secure " + suffix;
const T = { timeout: 15000 };

const browser = await launchChromium();
let passed = 0;
function log(s) { passed++; console.log("ok - " + s); }

try {
  const pages = [];
  const sockets = [];
  // bob on a phone-width page, where the room list sits behind #menu (as in chat.test.mjs)
  for (const [name, width] of [[alice, 1000], [bob, 390]]) {
    const ctx = await browser.newContext({ viewport: { width, height: 750 }, ignoreHTTPSErrors: true });
    const page = await ctx.newPage();
    page.on("pageerror", (e) => { console.error("page error:", e); process.exitCode = 1; });
    page.on("websocket", (ws) => sockets.push(ws.url()));
    await page.goto(base);
    assert.equal(new URL(page.url()).protocol, "https:");
    await page.fill("#username", name);
    await page.fill("#password", "hunter2hunter2");
    await page.click("#register");
    await page.waitForSelector("#app:not([hidden])", T);
    await page.waitForFunction(() => document.getElementById("conn").textContent === "connected", null, T);
    pages.push(page);
  }
  const [a, b] = pages;
  assert.ok(sockets.length >= 2 && sockets.every((u) => u.startsWith("wss://")), "WebSockets: " + sockets.join(", "));
  log("two users register and connect over https:// and wss://");

  await a.click("#new-room-box summary");
  await a.fill("#new-room-name", room);
  await a.click("#new-room button[type=submit]");
  await a.waitForFunction((n) => document.getElementById("room-title").textContent.includes(n), room, T);
  await b.reload();
  await b.waitForFunction(() => document.getElementById("conn").textContent === "connected", null, T);
  await b.click("#menu");
  await b.click(`#public-rooms button:has-text("${room}")`, T);
  await b.waitForFunction((n) => document.getElementById("room-title").textContent.includes(n), room, T);
  log("room created and joined over HTTPS");

  await a.fill("#composer-text", "hello over wss");
  await a.press("#composer-text", "Enter");
  await b.waitForSelector(`#messages li:has-text("hello over wss")`, T);
  await b.fill("#composer-text", "and back");
  await b.press("#composer-text", "Enter");
  await a.waitForSelector(`#messages li:has-text("and back")`, T);
  await a.screenshot({ path: join(shots, "alice-over-tls.png"), fullPage: true });
  await b.screenshot({ path: join(shots, "bob-over-tls.png"), fullPage: true });
  log("messages both ways over wss://");
} catch (e) {
  console.error("not ok - " + (e && e.stack ? e.stack : e));
  process.exitCode = 1;
} finally {
  await browser.close();
  console.log(`browser tls: ${passed} passed, ${process.exitCode ? 1 : 0} failed`);
}
