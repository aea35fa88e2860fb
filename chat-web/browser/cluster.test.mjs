// Browser test of two chat front ends on one RabbitMQ cluster behind a load balancer: a small
// TCP balancer here (each connection to the first backend that accepts, A then B) stands in for
// nginx or HAProxy. erin's page goes through the balancer (so to A), frank's straight to B.
// A is killed with SIGKILL: erin's page reconnects by itself through the balancer to B (her
// token, issued by A, holds there), catches up on what frank wrote meanwhile, each message
// once, and goes on chatting.
// Usage: node cluster.test.mjs http://A http://B PID_OF_A [screenshot dir]
import { launchChromium } from "./chromium.mjs";
import { register } from "./register.mjs";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import net from "node:net";
import assert from "node:assert/strict";

const [baseA, baseB, pidA] = process.argv.slice(2, 5);
const shots = process.argv[5] || "target/chat-screenshots/cluster";
assert.ok(baseA && baseB && pidA, "usage: node cluster.test.mjs http://A http://B PID_OF_A [shots]");
mkdirSync(shots, { recursive: true });
const suffix = Math.random().toString(16).slice(2, 8);
const erin = "erin-" + suffix, frank = "frank-" + suffix, room = "lb " + suffix;
const T = { timeout: 20000 };

// the balancer: plain TCP, no stickiness, the next backend when one refuses
const backends = [new URL(baseA), new URL(baseB)];
const used = new Map();
const balancer = net.createServer((client) => {
  client.pause();
  let i = 0;
  const next = () => {
    if (i >= backends.length) { client.destroy(); return; }
    const b = backends[i++];
    const up = net.connect(Number(b.port), b.hostname);
    let connected = false;
    up.once("connect", () => {
      connected = true;
      used.set(b.port, (used.get(b.port) || 0) + 1);
      up.on("close", () => client.destroy());
      client.on("close", () => up.destroy());
      client.on("error", () => up.destroy());
      client.pipe(up); up.pipe(client); client.resume();
    });
    // a backend that refuses: the next one (its "close" follows and is ignored)
    up.on("error", () => { if (!connected) next(); else client.destroy(); });
  };
  next();
});
await new Promise((r) => balancer.listen(0, "127.0.0.1", r));
const lb = `http://127.0.0.1:${balancer.address().port}`;

const browser = await launchChromium();
let step = 0;
async function shot(page, name) { await page.screenshot({ path: join(shots, `${String(++step).padStart(2, "0")}-${name}.png`), fullPage: true }); }
let passed = 0;
function log(s) { passed++; console.log("ok - " + s); }

async function say(page, text) {
  await page.fill("#composer-text", text);
  await page.press("#composer-text", "Enter");
}

try {
  const e = await (await browser.newContext()).newPage();
  const f = await (await browser.newContext()).newPage();
  for (const p of [e, f]) p.on("pageerror", (err) => { console.error("page error:", err); process.exitCode = 1; });
  await register(e, lb, erin, T);
  await register(f, baseB, frank, T);
  assert.ok(used.get(backends[0].port) > 0, "the balancer sent erin to A");
  log("erin on A through the balancer, frank on B");

  await e.click("#new-room-box summary");
  await e.fill("#new-room-name", room);
  await e.click("#new-room button[type=submit]");
  await e.waitForFunction((n) => document.getElementById("room-title").textContent.includes(n), room, T);
  // B folds the new room from the broker within moments
  for (let k = 0; ; k++) {
    await f.reload();
    await f.waitForSelector("#app:not([hidden])", T);
    if (await f.locator(`#public-rooms button:has-text("${room}")`).count() > 0) break;
    assert.ok(k < 20, "B never listed the room made on A");
    await f.waitForTimeout(250);
  }
  await f.click(`#public-rooms button:has-text("${room}")`, T);
  await f.waitForFunction((n) => document.getElementById("room-title").textContent.includes(n), room, T);
  await say(e, "before the crash");
  await f.waitForSelector(`#messages li:has-text("before the crash")`, T);
  log("a room made on A, joined on B, a message across");

  process.kill(Number(pidA), "SIGKILL");
  const killed = Date.now();
  await say(f, "while A is gone 1");
  await say(f, "while A is gone 2");
  await f.waitForSelector(`#messages li:has-text("while A is gone 2")`, T);
  // erin's page notices, reconnects through the balancer (now to B) and catches up
  try {
    await e.waitForSelector(`#messages li:has-text("while A is gone 2")`, { timeout: 45000 });
  } catch (err) {
    await shot(e, "erin-stuck");
    console.error("# erin's page:", await e.evaluate(() => document.getElementById("conn").textContent),
      "balancer connections per backend port:", JSON.stringify([...used]));
    throw err;
  }
  await e.waitForFunction(() => document.getElementById("conn").textContent === "connected", null, T);
  console.log(`# erin's page caught up through B ${Date.now() - killed} ms after A was killed`);
  await shot(e, "erin-after-failover");
  log("A killed: erin's page reconnected through B and caught up");

  await say(e, "after the crash");
  await f.waitForSelector(`#messages li:has-text("after the crash")`, T);
  await e.waitForSelector(`#messages li.mine:has-text("after the crash") .status[data-status]:not([data-status="sending"])`, T);
  for (const [who, page] of [["erin", e], ["frank", f]]) {
    const all = await page.$$eval("#messages li", (els) => els.map((el) => el.textContent));
    for (const t of ["before the crash", "while A is gone 1", "while A is gone 2", "after the crash"]) {
      const n = all.filter((x) => x.includes(t)).length;
      assert.equal(n, 1, `${who} shows "${t}" ${n} times: ${JSON.stringify(all)}`);
    }
  }
  await shot(f, "frank-after-failover");
  log("erin chats on through B; every message shown once on both pages");
} finally {
  await browser.close();
  balancer.close();
}
console.log(`${passed} passed`);
