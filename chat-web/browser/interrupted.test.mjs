// Browser check (issue 19): a bot's reply whose growth stops, because the front end following
// it died, is marked interrupted by the page itself after the server's timeout (hello's
// stale_reply_ms), never "writing…" forever. The page's WebSocket goes through playwright's
// routeWebSocket to the real server, and the test adds a streaming reply to it as that dead
// front end's last words; the page's clock is playwright's, moved on instead of waited for.
// Usage: node interrupted.test.mjs http://127.0.0.1:8080 [screenshot dir]
import { launchChromium } from "./chromium.mjs";
import { register } from "./register.mjs";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import assert from "node:assert/strict";

const base = process.argv[2] || "http://127.0.0.1:8080";
const shots = process.argv[3] || "target/chat-screenshots";
mkdirSync(shots, { recursive: true });
const suffix = Math.random().toString(16).slice(2, 8);
const T = { timeout: 15000 };

const browser = await launchChromium();
try {
  const ctx = await browser.newContext({ viewport: { width: 1000, height: 700 } });
  const page = await ctx.newPage();
  page.on("pageerror", (e) => { console.error("page error:", e); process.exitCode = 1; });
  let toPage = null;
  await page.routeWebSocket(/\/ws\?/, (ws) => { ws.connectToServer(); toPage = ws; }); // forwards both ways
  await page.clock.install();
  let stale = null;
  page.on("websocket", (ws) => ws.on("framereceived", (f) => {
    try { const ev = JSON.parse(f.payload); if (ev.type === "hello") stale = ev.stale_reply_ms; } catch (_) { /* not JSON */ }
  }));
  await register(page, base, "dave-" + suffix, T);
  await page.click('#my-rooms button[data-room="general"]', T);
  await page.waitForFunction(() => document.getElementById("room-title").textContent.includes("general"), null, T);
  assert.equal(stale, 60000, "hello says the server's timeout");

  const id = "ghost-" + suffix;
  const reply = (text) => JSON.stringify({ type: "message", room: "general", message: {
    id, room: "general", offset: 9e15, author: "ghostbot", bot: true, text, ts: Date.now(), streaming: true } });
  toPage.send(reply("half a"));
  const li = page.locator(`#messages li:has-text("half a")`);
  await li.locator(".streaming-mark").waitFor(T);
  await page.clock.fastForward(40000);
  toPage.send(reply("half a sentence").replace('"type":"message"', '"type":"edit"'));
  await page.locator(`#messages li:has-text("half a sentence") .streaming-mark`).waitFor(T);
  await page.clock.fastForward(40000); // 80 s since it began, 40 s since it last grew
  await page.waitForTimeout(300);
  assert.equal(await li.locator(".streaming-mark").count(), 1, "still writing: it grew 40 s ago");
  await page.clock.fastForward(25000);
  await li.locator(".interrupted-mark").waitFor(T);
  assert.equal(await li.locator(".streaming-mark").count(), 0, "no longer writing…");
  await page.screenshot({ path: join(shots, "interrupted-01-marked-by-the-page.png"), fullPage: true });
  console.log("ok - a reply that stopped growing is marked interrupted by the page after the server's timeout");
  console.log("interrupted: 1 passed");
} catch (e) {
  console.error(e);
  process.exitCode = 1;
} finally {
  await browser.close();
}
