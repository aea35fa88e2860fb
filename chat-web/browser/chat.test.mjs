// Browser test of warren's web chat: two users in two browser contexts (Debian chromium driven
// by playwright-core), alice on a desktop (1280x800, light), bob on a phone (390x844, dark).
// Usage: node chat.test.mjs http://127.0.0.1:8080 [screenshot dir]
// CHAT_BROKER_CTL: the broker's control command (`warren ctl --data-dir D`, or rabbitmqctl),
// used to make the broker drop every connection.
// It asserts what a person sees: visibility by computed style and bounding box, positions on
// screen, text; never only that an element exists.
import { register } from "./register.mjs";
import { launchChromium, seen } from "./chromium.mjs";
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
const DESKTOP = { width: 1280, height: 800 }, PHONE = { width: 390, height: 844 };

const browser = await launchChromium();
let step = 0;
async function shot(page, name) { await page.screenshot({ path: join(shots, `${String(++step).padStart(2, "0")}-${name}.png`) }); }
let passed = 0;
function log(s) { passed++; console.log("ok - " + s); }

// The text a person can see on the page (innerText leaves out what is not rendered).
const visibleText = (page) => page.evaluate(() => document.body.innerText);
const title = (page) => page.evaluate(() => document.getElementById("room-title").textContent);

try {
  const ca = await browser.newContext({ viewport: DESKTOP });
  const cb = await browser.newContext({ viewport: PHONE, colorScheme: "dark", isMobile: true, hasTouch: true });
  await cb.grantPermissions(["notifications"], { origin: base });
  // count the desktop notifications bob's page raises
  await cb.addInitScript(() => {
    window.__notes = [];
    const N = window.Notification;
    if (N) {
      window.Notification = class extends N {
        constructor(t, o) { super(t, o); window.__notes.push({ title: t, body: o && o.body }); }
      };
    }
  });
  const a = await ca.newPage();
  let b = await cb.newPage();
  const dialogs = [];
  for (const p of [a, b]) {
    p.on("pageerror", (e) => { console.error("page error:", e); process.exitCode = 1; });
    p.on("dialog", (d) => { dialogs.push(d.message()); d.dismiss(); }); // prompt/confirm/alert are a failure
  }

  // first visit: the form alone
  await a.goto(base);
  assert.equal(await seen(a, "#auth-form"), true);
  assert.equal(await seen(a, "#app"), false, "the chat is not shown under the login form");
  assert.equal(await a.evaluate(() => document.querySelector("#username").validity.valid), false);
  await a.fill("#username", "Bad Name");
  assert.equal(await a.evaluate(() => document.querySelector("#username").validity.patternMismatch), true, "the username pattern is checked by the browser");
  assert.equal(await a.evaluate(() => document.querySelector("link[rel=icon]").href.endsWith("/favicon.svg")), true);
  assert.equal((await a.request.get(base + "/favicon.svg")).status(), 200);
  await shot(a, "login-desktop");
  log("first visit: only the login form shows; the user name pattern works; favicon");

  await register(a, base, alice, T);
  await register(b, base, bob, T);
  assert.equal(await seen(a, "#auth"), false);
  assert.equal(await seen(a, "#empty"), true, "a first-time user is told what to do");
  assert.match(await visibleText(a), /Pick a room/);
  assert.equal(await a.isDisabled("#composer-text"), true);
  await shot(b, "bob-registered-phone-dark");
  log("two users register; an empty chat says what to do");

  // alice creates a public room: it reaches bob's list within a second, without a reload
  await a.click("#new-room-box summary");
  await a.fill("#new-room-name", lobby);
  await a.click("#new-room button[type=submit]");
  const created = Date.now();
  await a.waitForFunction((n) => document.getElementById("room-title").textContent.includes(n), lobby, T);
  await b.click("#menu");
  await b.waitForSelector(`#public-rooms button:has-text("${lobby}")`, { timeout: 3000 });
  const late = Date.now() - created;
  assert.ok(late < 1000, `the new room reached bob after ${late} ms`);
  await b.click(`#public-rooms button:has-text("${lobby}")`);
  await b.waitForFunction((n) => document.getElementById("room-title").textContent.includes(n), lobby, T);
  assert.equal(await seen(b, "#sidebar"), false, "on a phone the menu closes when a room opens");
  log(`a new public room reaches another user in ${late} ms; joined`);

  // markdown, an XSS payload shown as text, a link whose text lies about its target
  const xss = `<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>`;
  const say = async (page, text) => { await page.fill("#composer-text", text); await page.press("#composer-text", "Enter"); };
  await say(a, "hello **bob** and `code`");
  await say(a, xss);
  await say(a, "[https://bank.example](https://evil.example/login) and [docs](javascript:alert(1))");
  await a.fill("#composer-text", "```\nfn main() {}\n```\n- one\n- two\n> quoted");
  await a.press("#composer-text", "Enter");
  await b.waitForSelector(`#messages li:has-text("quoted")`, T);
  assert.equal(await b.textContent("#messages li strong"), "bob");
  assert.equal(await b.locator("#messages .text img, #messages script").count(), 0, "no HTML from messages");
  assert.equal(await b.evaluate(() => window.pwned), undefined);
  assert.ok((await b.textContent("#messages")).includes(xss), "payload shown as text");
  const link = b.locator('#messages a:has-text("https://bank.example")');
  assert.equal(await link.getAttribute("href"), "https://evil.example/login");
  assert.equal(await link.getAttribute("title"), "https://evil.example/login", "the real target on hover");
  assert.match(await b.textContent(`#messages li:has-text("bank.example") .text`), /\(evil\.example\)/, "the real host is spelled out");
  assert.equal(await b.locator('#messages a:has-text("docs")').getAttribute("href"), null, "javascript: links are dropped");
  assert.ok(await seen(b, "#messages li pre code"), "fenced code");
  assert.equal(await b.locator('#messages li:has-text("quoted") ul li').count(), 2, "lists");
  assert.ok(await seen(b, "#messages li blockquote"), "quotes");
  await a.waitForSelector('#messages li.mine .status[data-status="read"]', T);
  await shot(a, "alice-public-room");
  await shot(b, "bob-public-room");
  log("markdown (code, lists, quotes), XSS as text, deceptive links show their real target, receipts");

  // read marks and the open room survive a reload
  await a.reload();
  await a.waitForFunction((n) => document.getElementById("room-title").textContent.includes(n), lobby, T);
  await a.waitForSelector(`#messages li:has-text("quoted")`, T);
  await a.waitForFunction(() => { const s = [...document.querySelectorAll("#messages li.mine .status")]; return s.length && s.at(-1).dataset.status === "read"; }, null, T);
  assert.match(await a.title(), new RegExp(lobby));
  log("after a reload the last room is open again and read marks stay read");

  // presence; typing shows, and goes as soon as the message arrives
  await a.waitForSelector(`#people button[data-user="${bob}"][data-status="online"]`, T);
  await b.type("#composer-text", "typing...");
  await a.waitForFunction((n) => document.getElementById("typing").textContent.includes(n), bob, T);
  await shot(a, "alice-sees-typing");
  await b.fill("#composer-text", "done typing");
  await b.press("#composer-text", "Enter");
  await a.waitForSelector(`#messages li:has-text("done typing")`, T);
  await a.waitForFunction(() => document.getElementById("typing").textContent === "", null, { timeout: 1500 });
  log("presence; typing indicator cleared by the message");

  // inline edit and delete, no browser dialogs
  const mine = (text) => a.locator(`#messages li.mine:has-text("${text}")`);
  await say(a, "a typo herre");
  await mine("a typo herre").locator(".status:not([data-status=sending])").waitFor(T);
  await mine("a typo herre").hover();
  await mine("a typo herre").locator('button:has-text("edit")').click();
  const editor = a.locator("#messages li.mine .editor textarea");
  assert.ok(await seen(a, "#messages li.mine .editor textarea"), "inline editor");
  await editor.fill("a typo here");
  await editor.press("Enter");
  await b.waitForSelector(`#messages li:has-text("a typo here") .edited`, T);
  await say(a, "delete me please");
  await mine("delete me please").locator(".status:not([data-status=sending])").waitFor(T);
  await mine("delete me please").hover();
  await mine("delete me please").locator('button:has-text("delete")').click();
  await mine("delete me please").locator('.confirm button:has-text("Delete")').click();
  await b.waitForFunction(() => [...document.querySelectorAll("#messages .deleted")].some((e) => e.textContent === "message deleted"), null, T);
  assert.deepEqual(dialogs, [], "no prompt/confirm/alert");
  log("inline edit and delete");

  // bob replies to a message (it is quoted above his), alice reacts to the reply
  const theirs = (page, text) => page.locator(`#messages li.msg:has(.text:has-text("${text}"))`);
  await theirs(b, "a typo here").locator('button:has-text("reply")').click();
  assert.ok(await seen(b, "#reply-to"), "the composer says what is answered");
  await say(b, "agreed, fixed");
  await a.waitForSelector(`#messages li.msg:has-text("agreed, fixed") .quote:has-text("a typo here")`, T);
  assert.equal(await seen(b, "#reply-to"), false);
  await theirs(a, "agreed, fixed").hover();
  await theirs(a, "agreed, fixed").locator('button:has-text("react")').click();
  await a.click('#messages .picker button[aria-label="React with 👍"]');
  await b.waitForSelector(`#messages li.msg:has-text("agreed, fixed") .reactions button[aria-pressed="false"]:has-text("👍 1")`, T);
  await a.waitForSelector(`#messages li.msg:has-text("agreed, fixed") .reactions button[aria-pressed="true"]:has-text("👍 1")`, T);
  await shot(a, "alice-reply-and-reaction");
  // the README's screenshots (docs/chat-desktop.png, docs/chat-phone.png)
  await a.screenshot({ path: join(shots, "readme-desktop.png") });
  await b.screenshot({ path: join(shots, "readme-phone.png") });
  log("replies quote the message they answer; emoji reactions reach the other user");

  // search on the server, across bob's rooms
  await b.click("#menu");
  await b.fill("#search", "TYPO");
  await b.press("#search", "Enter");
  await b.waitForSelector('#results:has-text("a typo here")', T);
  assert.ok(await seen(b, "#results"), "results on screen");
  assert.match(await b.textContent("#results strong"), /message/);
  await b.click('#results button.hit:has-text("a typo here")');
  assert.equal(await seen(b, "#results"), false);
  log("message search");

  // history: scrolled up, bob reads undisturbed while alice talks; older pages keep the view
  const lobbyId = await a.evaluate(() => document.querySelector('#my-rooms button[aria-current="true"]').dataset.room);
  const token = await a.evaluate(() => localStorage.getItem("warren.token"));
  const post = (text) => a.request.post(`${base}/api/rooms/${lobbyId}/messages`, { headers: { authorization: "Bearer " + token }, data: { text } });
  // (10 posts a second: the posting budget)
  for (let i = 1; i <= 70; i++) { const r = await post("history " + i); assert.equal(r.status(), 201); await a.waitForTimeout(100); }
  await b.waitForSelector(`#messages li:has-text("history 70")`, T);
  // a fresh page holds the newest page of history; older ones come from the server
  await b.reload();
  await b.waitForSelector(`#messages li:has-text("history 70")`, T);
  await b.evaluate(() => { document.getElementById("messages").scrollTop = 200; }); // well up from the bottom
  await b.waitForTimeout(300);
  const anchorOf = (page) => page.evaluate(() => {
    const l = document.getElementById("messages"), top = l.getBoundingClientRect().top;
    const first = [...l.querySelectorAll("li.msg")].find((li) => li.getBoundingClientRect().bottom > top + 5);
    return { id: first.dataset.id, y: first.getBoundingClientRect().top, scroll: l.scrollTop };
  });
  const before = await anchorOf(b);
  for (const t of ["while bob reads 1", "while bob reads 2", "while bob reads 3"]) await say(a, t);
  await b.waitForSelector(`#messages li:has-text("while bob reads 3")`, { ...T, state: "attached" });
  const after = await anchorOf(b);
  assert.equal(after.id, before.id, "the same message at the top");
  assert.ok(Math.abs(after.y - before.y) < 2, `it did not move (${before.y} -> ${after.y})`);
  assert.ok(await seen(b, "#jump"), "a button offers the new messages");
  await shot(b, "bob-reading-history");
  // "Load older messages": they come in above, and what bob was reading stays put
  const count = () => b.evaluate(() => document.querySelectorAll("#messages li.msg").length);
  const n0 = await count(), older0 = await anchorOf(b);
  assert.ok(await seen(b, "#older"));
  await b.click("#older");
  await b.waitForFunction((n) => document.querySelectorAll("#messages li.msg").length > n, n0, T);
  const older1 = await anchorOf(b);
  assert.equal(older1.id, older0.id, "the same message at the top after loading older ones");
  assert.ok(Math.abs(older1.y - older0.y) < 2, `it did not move (${older0.y} -> ${older1.y})`);
  assert.ok(older1.scroll > older0.scroll, "the older messages are above the view");
  await b.click("#jump");
  await b.waitForFunction(() => { const l = document.getElementById("messages"); return l.scrollHeight - l.scrollTop - l.clientHeight < 60; }, null, T);
  assert.equal(await seen(b, "#jump"), false);
  assert.ok(await seen(b, '#messages li.msg:last-child'), "the newest message is on screen");
  log("scrolled up: new messages do not move the view; older ones load above it without a jump");

  // a mention raises a desktop notification (permission granted) while bob is elsewhere
  await b.click("#menu");
  await b.click(`#people button[data-user="${alice}"]`);
  await b.waitForFunction((n) => document.getElementById("room-title").textContent.includes(n), alice, T);
  await say(a, `hey @${bob}, look at this`);
  await b.waitForFunction(() => window.__notes.some((n) => n.body && n.body.includes("look at this")), null, T);
  await b.click("#menu");
  await b.waitForSelector(`#my-rooms li:has(button:has-text("${lobby}")) .badge.mention`, T);
  await shot(b, "bob-mentioned");
  await b.click(`#my-rooms button:has-text("${lobby}")`);
  await b.waitForSelector("#messages li.mentioned", T);
  log("a mention: desktop notification, mention badge, highlighted message");

  // 1:1 chat
  await a.click(`#people button[data-user="${bob}"]`);
  await a.waitForFunction((n) => document.getElementById("room-title").textContent.includes("@ " + n), bob, T);
  await say(a, "psst, private");
  await b.click("#menu");
  await b.click(`#my-rooms button:has-text("@ ${alice}")`, T);
  await b.waitForSelector(`#messages li:has-text("psst, private")`, T);
  await shot(b, "bob-direct-chat");
  log("1:1 chat");

  // moderation by the room's owner: add by name, rename, remove a member, new invitation
  const secret = "secret " + suffix;
  await a.click("#new-room-box summary");
  await a.fill("#new-room-name", secret);
  await a.check("#new-room-private");
  await a.click("#new-room button[type=submit]");
  await a.waitForFunction((n) => document.getElementById("room-title").textContent.includes(n), secret, T);
  assert.ok(await seen(a, '#room-title span[aria-label="private room"] svg'), "the lock is an SVG");
  await a.click("#room-people");
  const oldLink = await a.inputValue("#invite-link");
  await a.fill("#invite-name", bob);
  await a.click('#invite-form button[type=submit]');
  await b.click("#menu");
  await b.click(`#my-rooms button:has-text("${secret}")`, T);
  await b.waitForFunction((n) => document.getElementById("room-title").textContent.includes(n), secret, T);
  await a.fill("#rename-room", secret + " renamed");
  await a.click('#room-panel button:has-text("Rename")');
  await b.waitForFunction((n) => document.getElementById("room-title").textContent.includes(n), secret + " renamed", T);
  await shot(a, "alice-manages-room");
  await a.click(`#room-panel button[data-remove="${bob}"]`);
  const removed = Date.now();
  await b.waitForFunction((n) => !document.getElementById("room-title").textContent.includes(n), secret, T);
  const gone = Date.now() - removed;
  assert.ok(gone < 2000, `bob lost the room after ${gone} ms`);
  assert.equal(await seen(b, "#empty"), true, "bob's view closed");
  await b.click("#menu");
  assert.ok(!(await visibleText(b)).includes(secret), "the room is gone from bob's list");
  await a.click("#rotate-invite");
  await a.waitForFunction((l) => document.getElementById("invite-link").value !== l, oldLink, T);
  await b.goto(oldLink);
  await b.waitForSelector('#toasts .toast:has-text("Could not join")', T);
  assert.ok(!(await visibleText(b)).includes(secret), "the old invitation no longer works");
  await b.goto(await a.inputValue("#invite-link"));
  await b.waitForFunction((n) => document.getElementById("room-title").textContent.includes(n), secret, T);
  log(`the owner adds by name, renames, removes a member (whose page lost the room in ${gone} ms), rotates the invitation`);

  // bob leaves; alice writes in the lobby; bob comes back to the missed messages
  await b.close();
  await a.waitForSelector(`#people button[data-user="${bob}"][data-status="offline"]`, T);
  await a.click(`#my-rooms button:has-text("${lobby}")`);
  for (const t of ["while you were away 1", "while you were away 2"]) {
    await say(a, t);
    await a.waitForSelector(`#messages li:has-text("${t}") .status[data-status="sent"]`, T);
  }
  b = await cb.newPage();
  b.on("pageerror", (e) => { console.error("page error:", e); process.exitCode = 1; });
  b.on("dialog", (d) => { dialogs.push(d.message()); d.dismiss(); });
  await b.goto(base);
  await b.waitForFunction(() => document.getElementById("conn").textContent === "connected", null, T);
  // (the page's hello may restore the last open room just after "connected", which closes the
  // phone's menu again: open it until the badge shows)
  await b.waitForFunction((name) => {
    const s = document.getElementById("sidebar");
    if (!s.classList.contains("open")) document.getElementById("menu").click();
    const li = [...document.querySelectorAll("#my-rooms li")].find((l) => l.textContent.includes(name));
    const badge = li && li.querySelector(".badge");
    return !!badge && s.classList.contains("open") && badge.getBoundingClientRect().width > 0;
  }, lobby, { ...T, polling: 250 });
  const badge = b.locator(`#my-rooms li:has(button:has-text("${lobby}")) .badge`);
  await badge.waitFor(T);
  assert.equal(await badge.textContent(), "2", "unread count");
  // the title counts every room's unread messages (on a shared RabbitMQ the default room
  // `general` may hold messages from other tests that bob has not read either)
  const titleCountsBadges = () => {
    const n = [...document.querySelectorAll("#my-rooms .badge")].reduce((sum, el) => sum + (Number(el.textContent) || 0), 0);
    return n >= 2 && document.title.startsWith("(" + n + ") ");
  };
  await b.waitForFunction(titleCountsBadges, null, T).catch(async (e) => {
    throw new Error(`the tab title counts unread messages: title ${await b.title()}, badges ${await b.$$eval("#my-rooms .badge", (els) => els.map((x) => x.textContent))}: ${e.message}`);
  });
  await shot(b, "bob-back-with-unread");
  await b.click(`#my-rooms button:has-text("${lobby}")`);
  await b.waitForSelector(`#messages li:has-text("while you were away 2")`, T);
  // the lobby's two are read: the title counts only what is left in other rooms (none on a
  // fresh broker)
  await b.waitForFunction((room) => {
    const items = [...document.querySelectorAll("#my-rooms li")];
    if (items.some((li) => li.textContent.includes(room) && li.querySelector(".badge"))) return false;
    const n = items.reduce((sum, li) => sum + (Number(li.querySelector(".badge")?.textContent) || 0), 0);
    return n ? document.title.startsWith("(" + n + ") ") : !document.title.startsWith("(");
  }, lobby, T);
  await a.waitForSelector(`#people button[data-user="${bob}"][data-status="online"]`, T);
  await shot(b, "bob-caught-up");
  log("offline catch-up with unread count and tab title");

  // the broker drops every connection (CHAT_BROKER_CTL: warren ctl or rabbitmqctl): the chat
  // reconnects to the broker, and both pages to the chat, by themselves
  const conn = (page) => page.evaluate(() => document.getElementById("conn").textContent);
  execSync(`${process.env.CHAT_BROKER_CTL} close_all_connections "browser test"`, { stdio: "inherit" });
  for (const p of [a, b]) {
    await p.waitForFunction(() => document.getElementById("conn").textContent !== "connected", null, { ...T, polling: 20 });
    assert.match(await conn(p), /reconnecting/);
  }
  // bob writes while his page is still reconnecting: it goes out once the page is back
  await say(b, "written while reconnecting");
  for (const p of [a, b]) {
    await p.waitForFunction(() => document.getElementById("conn").textContent === "connected", null, { timeout: 30000 });
  }
  await a.waitForSelector(`#messages li:has-text("written while reconnecting")`, T);
  await say(a, "after the broker dropped us");
  // confirmed by the broker ("sent"), or already further along ("delivered", "read": bob is looking)
  await a.waitForSelector(`#messages li:has-text("after the broker dropped us") .status:not([data-status="sending"])`, T);
  await b.waitForSelector(`#messages li:has-text("after the broker dropped us")`, T);
  await shot(b, "bob-after-broker-reconnect");
  log("broker drops the connections: the pages reconnect by themselves");

  // log out on a shared computer: nothing of bob stays on screen
  await b.click("#logout");
  await b.waitForSelector("#auth:not([hidden])", T);
  assert.equal(await seen(b, "#app"), false, "the chat is not shown after log out");
  assert.equal(await seen(b, "#messages"), false);
  const left = await visibleText(b);
  for (const secret of [bob, lobby, "psst, private", "after the broker dropped us", alice]) {
    assert.ok(!left.includes(secret), `"${secret}" is still visible after log out`);
  }
  assert.equal(await b.title(), "warren chat");
  assert.equal(await b.inputValue("#username"), "", "the previous user name is not left in the form");
  await shot(b, "bob-logged-out");
  log("after Log out nothing of the previous user is visible");

  // alice changes her password in the settings
  await a.click("#me");
  await a.fill("#old-password", "hunter2hunter2");
  await a.fill("#new-password", "correct horse battery");
  await a.click('#password-form button[type=submit]');
  await a.waitForFunction(() => document.getElementById("password-result").textContent === "Password changed.", null, T);
  assert.equal((await a.request.post(base + "/api/login", { data: { username: alice, password: "correct horse battery" } })).status(), 200);
  assert.equal((await a.request.post(base + "/api/login", { data: { username: alice, password: "hunter2hunter2" } })).status(), 401);
  await a.click("#settings-close");
  log("password change");

  // the administrator (--admin, from the script) disables bob: his open page ends at once
  if (process.env.CHAT_ADMIN) {
    await b.fill("#username", bob); await b.fill("#password", "hunter2hunter2"); await b.click("#login");
    await b.waitForFunction(() => document.getElementById("conn").textContent === "connected", null, T);
    const cr = await browser.newContext({ viewport: DESKTOP });
    const root = await cr.newPage();
    root.on("pageerror", (e) => { console.error("page error:", e); process.exitCode = 1; });
    await root.goto(base);
    await root.fill("#username", process.env.CHAT_ADMIN);
    await root.fill("#password", "hunter2hunter2");
    // the administrator's account exists on a re-run against the same broker
    await root.click("#register");
    await root.waitForTimeout(500);
    if (!(await seen(root, "#app"))) await root.click("#login");
    await root.waitForSelector("#app:not([hidden])", T);
    await root.waitForFunction(() => document.getElementById("conn").textContent === "connected", null, T);
    await root.click("#me");
    await root.waitForSelector(`#admin-users li[data-user="${bob}"] button:has-text("Disable")`, T);
    await shot(root, "admin-accounts");
    await root.click(`#admin-users li[data-user="${bob}"] button:has-text("Disable")`);
    const off = Date.now();
    await b.waitForSelector("#auth:not([hidden])", T);
    const ended = Date.now() - off;
    assert.ok(ended < 2000, `bob's page ended after ${ended} ms`);
    assert.equal(await seen(b, "#app"), false);
    await b.fill("#username", bob); await b.fill("#password", "hunter2hunter2"); await b.click("#login");
    await b.waitForFunction(() => /disabled/.test(document.getElementById("auth-error").textContent), null, T);
    await root.click(`#admin-users li[data-user="${bob}"] button:has-text("Enable")`);
    await root.waitForSelector(`#admin-users li[data-user="${bob}"] button:has-text("Disable")`, T);
    log(`an administrator disables an account: its page closed in ${ended} ms, it cannot log in`);
  }
} catch (e) {
  console.error("not ok - " + (e && e.stack ? e.stack : e));
  process.exitCode = 1;
} finally {
  await browser.close();
  // the plain summary line CI reads
  console.log(`browser: ${passed} passed, ${process.exitCode ? 1 : 0} failed`);
}
