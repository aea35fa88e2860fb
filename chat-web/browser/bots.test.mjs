// Browser test of bots in warren's web chat (issue 19): a new account lands in the default room
// `general`; `@bot ...` gets a reply that grows word by word in one message (screenshots mid-
// stream and at the end) and stays one message after a reload; a bot killed mid-reply leaves
// the message marked interrupted. The bots are `warren bot words` processes.
// Usage: WARREN_BIN=... BOT_AMQP_URL=amqp://bot:pw@host:port/vhost node bots.test.mjs http://127.0.0.1:8080 [shots]
// (the chat runs with --bot-idle-timeout 3; BOT_AMQP_URL's user may configure, read and write
// words-* queues and write to amq.default)
import { launchChromium } from "./chromium.mjs";
import { register } from "./register.mjs";
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import assert from "node:assert/strict";

const base = process.argv[2] || "http://127.0.0.1:8080";
const shots = process.argv[3] || "target/chat-screenshots";
mkdirSync(shots, { recursive: true });
const suffix = Math.random().toString(16).slice(2, 8);
const T = { timeout: 15000 };
const TEXT = "There were four of us George and William Samuel Harris and myself and Montmorency we were sitting in my room smoking and talking about how bad we were";

const bots = [];
/** Start `warren bot words`; resolves once it consumes its request queue. */
function startBot(name, rate, text) {
  const p = spawn(process.env.WARREN_BIN, ["bot", "words", "--amqp-url", process.env.BOT_AMQP_URL, "--name", name,
    "--rate", String(rate), "--text", text], { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, NO_COLOR: "1" } });
  bots.push(p);
  return new Promise((resolve, reject) => {
    let out = "";
    p.stdout.on("data", (d) => { out += d; if (out.includes("waiting for requests")) resolve(p); });
    p.on("exit", (code) => reject(new Error(`bot ${name} exited (${code}): ${out}`)));
    setTimeout(() => reject(new Error(`bot ${name} did not start: ${out}`)), 15000);
  });
}

const browser = await launchChromium();
let step = 0;
async function shot(page, name) { await page.screenshot({ path: join(shots, `bots-${String(++step).padStart(2, "0")}-${name}.png`), fullPage: true }); }
let passed = 0;
function log(s) { passed++; console.log("ok - " + s); }

try {
  const ctx = await browser.newContext({ viewport: { width: 1000, height: 700 } });
  const page = await ctx.newPage();
  page.on("pageerror", (e) => { console.error("page error:", e); process.exitCode = 1; });
  const user = "carol-" + suffix;
  await register(page, base, user, T);
  await page.click('#my-rooms button[data-room="general"]', T);
  await page.waitForFunction(() => document.getElementById("room-title").textContent.includes("general"), null, T);
  log("a new account is in the default room general");

  const words = "words-" + suffix;
  await startBot(words, 4, TEXT);
  await page.fill("#composer-text", `@${words} tell me a story`);
  await page.press("#composer-text", "Enter");
  const reply = page.locator(`#messages li:has(.author:text-is("${words}"))`);
  await page.locator(`#messages li.streaming:has(.author:text-is("${words}"))`).waitFor(T);
  await page.waitForFunction((n) => {
    const li = [...document.querySelectorAll("#messages li")].find((l) => l.querySelector(".author")?.textContent === n);
    return li && li.querySelector(".text").textContent.trim().split(/\s+/).length >= 4;
  }, words, T);
  const early = (await reply.locator(".text").textContent()).trim();
  await shot(page, "reply-mid-stream");
  await page.waitForTimeout(1000);
  const later = (await reply.locator(".text").textContent()).trim();
  assert.ok(later.length > early.length && later.startsWith(early), `the reply grew: "${early}" -> "${later}"`);
  assert.equal(await reply.count(), 1, "one message, growing");
  assert.ok(TEXT.startsWith(later), "the words of the text, in order");
  await page.locator(`#messages li.streaming:has(.author:text-is("${words}"))`).waitFor({ state: "detached", timeout: 30000 });
  assert.equal((await reply.locator(".text").textContent()).trim(), TEXT);
  assert.equal(await page.locator(`#messages li.interrupted:has(.author:text-is("${words}"))`).count(), 0);
  await shot(page, "reply-done");
  log("a streamed reply grows word by word in one message");

  await page.reload();
  await page.waitForFunction(() => document.getElementById("conn").textContent === "connected", null, T);
  await page.click('#my-rooms button[data-room="general"]', T);
  await reply.first().waitFor(T);
  assert.equal(await reply.count(), 1, "one message in the history");
  assert.equal((await reply.locator(".text").textContent()).trim(), TEXT);
  log("after a reload the history holds the one final message");

  const doomed = "words-k-" + suffix;
  const bot = await startBot(doomed, 3, TEXT + " " + TEXT);
  await page.fill("#composer-text", `/${doomed} go`);
  await page.press("#composer-text", "Enter");
  await page.waitForFunction((n) => {
    const li = [...document.querySelectorAll("#messages li.streaming")].find((l) => l.querySelector(".author")?.textContent === n);
    return li && li.querySelector(".text").textContent.trim().split(/\s+/).length >= 3;
  }, doomed, T);
  bot.kill("SIGKILL");
  const killed = Date.now();
  const cut = page.locator(`#messages li.interrupted:has(.author:text-is("${doomed}"))`);
  await cut.waitFor(T);
  const took = Date.now() - killed;
  assert.ok(took < 10000, `marked interrupted ${took} ms after the kill`);
  const kept = (await cut.locator(".text").textContent()).trim();
  assert.ok(kept.length > 0 && TEXT.startsWith(kept.slice(0, 20)), `the words that came are kept: "${kept}"`);
  assert.equal(await page.locator(`#messages li.streaming:has(.author:text-is("${doomed}"))`).count(), 0, "no spinner left");
  await shot(page, "reply-interrupted");
  log(`a bot killed mid-reply: the message is marked interrupted (${took} ms after the kill)`);
} catch (e) {
  console.error("not ok - " + (e && e.stack ? e.stack : e));
  process.exitCode = 1;
} finally {
  for (const b of bots) b.kill("SIGKILL");
  await browser.close();
  console.log(`browser (bots): ${passed} passed, ${process.exitCode ? 1 : 0} failed`);
}
