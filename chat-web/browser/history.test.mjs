// Browser test of long histories and live retention (scripts/chat-browser-test.sh runs it):
// - a room with a 1-minute retention: a message posted at the start disappears from the open
//   page (and from REST) about a minute later, without a reload, while a newer one stays;
// - meanwhile a room filled with 100,000 messages (bench/chat-fill.py, as a bot over AMQP)
//   opens and loads older pages by scrolling up in reasonable time (timings printed).
// Usage: node history.test.mjs http://127.0.0.1:8080 [screenshot dir]
// FILL_AMQP_URL: a bot's AMQP URL allowed to publish to `chat`; FILL_PYTHON: a python with pika.
import { register } from "./register.mjs";
import { launchChromium } from "./chromium.mjs";
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import assert from "node:assert/strict";

const base = process.argv[2] || "http://127.0.0.1:8080";
const shots = process.argv[3] || "target/chat-screenshots";
mkdirSync(shots, { recursive: true });
const suffix = Math.random().toString(16).slice(2, 8);
const carol = "carol-" + suffix;
const T = { timeout: 15000 };
const COUNT = Number(process.env.FILL_COUNT || 100000);

const browser = await launchChromium();
let passed = 0;
function log(s) { passed++; console.log("ok - " + s); }
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

try {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  await register(page, base, carol, T);
  const token = await page.evaluate(() => localStorage.getItem("warren.token"));
  const api = async (method, path, body) => {
    const r = await fetch(base + path, {
      method, headers: { authorization: "Bearer " + token, "content-type": "application/json" },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await r.text();
    if (!r.ok) throw new Error(method + " " + path + ": " + r.status + " " + text);
    return text ? JSON.parse(text) : null;
  };

  // a room whose messages last a minute, with one message now
  const brief = await api("POST", "/api/rooms", { name: "brief " + suffix, public: true, retention_seconds: 60 });
  assert.equal(brief.retention_seconds, 60);
  const gone = await api("POST", `/api/rooms/${brief.id}/messages`, { text: "this one expires " + suffix });
  const t0 = Date.now();
  await page.click(`#my-rooms button.room[data-room="${brief.id}"]`);
  const expiring = `#messages li.msg[data-id="${gone.id}"]`;
  await page.waitForSelector(expiring, T);
  assert.match(await page.textContent("#room-info"), /messages kept 1 minute/);
  log("a room with a 1-minute retention shows its new message, and says how long it keeps them");
  // the minute (plus the sweep) runs while the big room is filled and read in another tab: a
  // newer message posted 40 s in stays when the first one goes
  const expired = (async () => {
    await sleep(40000);
    const stays = await api("POST", `/api/rooms/${brief.id}/messages`, { text: "this one stays " + suffix });
    await page.waitForSelector(`#messages li.msg[data-id="${stays.id}"]`, T);
    await page.waitForSelector(expiring, { state: "detached", timeout: 40000 });
    const after = (Date.now() - t0) / 1000;
    const shown = await page.$eval(`#messages li.msg[data-id="${stays.id}"]`, (e) => e.getBoundingClientRect().height > 0);
    const rest = await api("GET", `/api/rooms/${brief.id}/messages`);
    await page.screenshot({ path: join(shots, "history-expired.png") });
    return { after, shown, rest: rest.messages.map((m) => m.id), stays: stays.id };
  })();
  expired.catch(() => {}); // awaited below

  // a room of 100,000 messages, filled by a bot while the minute runs
  const big = await api("POST", "/api/rooms", { name: "big " + suffix, public: true });
  const filled = new Promise((resolve, reject) => {
    const p = spawn(process.env.FILL_PYTHON || "python3",
      ["bench/chat-fill.py", "--uri", process.env.FILL_AMQP_URL, "--room", big.id, "--count", String(COUNT)],
      { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    p.stdout.on("data", (d) => { out += d; });
    p.on("exit", (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error("chat-fill.py exited " + code))));
  });
  const fill = await filled;
  // the chat has folded them all once the last one ("fill done") is in its history
  for (let i = 0; ; i++) {
    const page1 = await api("GET", `/api/rooms/${big.id}/messages?limit=1`);
    if (page1.messages[0] && page1.messages[0].text === "fill done") break;
    assert.ok(i < 1200, "the chat folded the fill within 240 s");
    await sleep(200);
  }
  const foldSecs = (Date.now() - t0) / 1000;
  log(`${COUNT} messages published in ${fill.seconds} s and in the chat's history after ${foldSecs.toFixed(1)} s`);

  // open the big room in a second tab: time to its newest messages, then older pages
  const tab = await ctx.newPage();
  await tab.goto(base);
  await tab.waitForFunction(() => document.getElementById("conn").textContent === "connected", null, T);
  let t = Date.now();
  await tab.click(`#my-rooms button.room[data-room="${big.id}"]`);
  await tab.waitForFunction(() => [...document.querySelectorAll("#messages li.msg .text")].some((e) => e.textContent.includes("fill done")), null, T);
  const openMs = Date.now() - t;
  const rendered = await tab.$$eval("#messages li.msg", (l) => l.length);
  assert.ok(rendered <= 300, `the list renders a window, not the room (${rendered} nodes)`);
  log(`the 100,000-message room opens in ${openMs} ms with ${rendered} messages rendered`);
  const pageTimes = [];
  for (let i = 0; i < 8; i++) {
    const before = await tab.$eval("#messages li.msg", (e) => e.dataset.offset);
    t = Date.now();
    await tab.$eval("#messages", (e) => { e.scrollTop = 0; e.dispatchEvent(new Event("scroll")); });
    await tab.waitForFunction((o) => document.querySelector("#messages li.msg").dataset.offset !== o, before, T);
    pageTimes.push(Date.now() - t);
  }
  const top = await tab.$eval("#messages li.msg .text", (e) => e.textContent);
  const n = Number((top.match(/message (\d+) of the fill/) || [])[1]);
  assert.ok(n < COUNT - 300, `scrolling up reached older messages (${top})`);
  const nodes = await tab.$$eval("#messages li", (l) => l.length);
  assert.ok(nodes <= 400, `the DOM stays bounded while scrolling up (${nodes} nodes)`);
  pageTimes.sort((a, b) => a - b);
  log(`8 older pages by scrolling up: median ${pageTimes[4]} ms, slowest ${pageTimes[7]} ms (top: message ${n})`);
  // a page from deep in the stream (the front end keeps the newest 5000 in memory)
  t = Date.now();
  const deep = await api("GET", `/api/rooms/${big.id}/messages?limit=50&before=${Math.floor(COUNT / 2)}`);
  assert.equal(deep.messages.length, 50);
  log(`a page from the middle of the stream over REST in ${Date.now() - t} ms`);
  await page.screenshot({ path: join(shots, "history-big-room.png") });
  await tab.screenshot({ path: join(shots, "history-big-room-scrolled.png") });
  await tab.close();

  // the minute is up (plus the sweep): gone from the open page and from REST, the newer one stays
  const { after: expiredAfter, shown, rest, stays } = await expired;
  assert.ok(expiredAfter >= 59, `not before its minute (${expiredAfter} s)`);
  assert.ok(shown, "the newer message is still on the page");
  assert.deepEqual(rest, [stays]);
  log(`the expired message left the open page ${expiredAfter.toFixed(1)} s after it was posted, and REST`);
  console.log(`history.test.mjs: ${passed} passed`);
} finally {
  await browser.close();
}
