// Browser test of file and image sharing in warren's web chat (issue 20): alice (desktop)
// attaches a PNG, bob (phone, dark) sees its preview (a loaded picture: visible by computed
// style and box, natural width > 0) and opens it full size; a document shows as a download
// chip that downloads; a paste and a drop upload too; a file over the limit is refused with a
// message next to the composer (no alert()).
// Usage: node files.test.mjs http://127.0.0.1:8080 [screenshot dir]
import { launchChromium, seen } from "./chromium.mjs";
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
let step = 0;
async function shot(page, name) { await page.screenshot({ path: join(shots, `files-${String(++step).padStart(2, "0")}-${name}.png`) }); }
let passed = 0;
function log(s) { passed++; console.log("ok - " + s); }

// The REST API as the page's signed-in user.
function api(page, method, path, body) {
  return page.evaluate(async ([method, path, body]) => {
    const r = await fetch(path, { method, headers: { "content-type": "application/json", authorization: "Bearer " + localStorage.getItem("warren.token") },
      body: body ? JSON.stringify(body) : undefined });
    return { status: r.status, body: await r.json().catch(() => null) };
  }, [method, path, body]);
}
async function openRoom(page, id) {
  if (await seen(page, "#menu")) await page.click("#menu"); // the phone's room list is behind ☰
  await page.click(`#my-rooms button[data-room="${id}"]`, T);
  await page.waitForFunction(() => !document.getElementById("composer-text").disabled, null, T);
}

try {
  const ca = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  const cb = await browser.newContext({ viewport: { width: 390, height: 844 }, colorScheme: "dark", isMobile: true, hasTouch: true, acceptDownloads: true });
  const a = await ca.newPage(), b = await cb.newPage();
  const dialogs = [];
  for (const p of [a, b]) {
    p.on("pageerror", (e) => { console.error("page error:", e); process.exitCode = 1; });
    p.on("dialog", (d) => { dialogs.push(d.message()); d.dismiss(); });
  }
  const alice = "alice-f" + suffix, bob = "bob-f" + suffix;
  await register(a, base, alice, T);
  await register(b, base, bob, T);
  const created = await api(a, "POST", "/api/rooms", { name: "pictures " + suffix, public: true });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const room = created.body.id;
  assert.equal((await api(b, "POST", `/api/rooms/${room}/join`)).status, 200);
  await openRoom(a, room);
  await openRoom(b, room);

  // a real PNG: a piece of alice's own page, 160x100
  const png = await a.screenshot({ clip: { x: 0, y: 0, width: 160, height: 100 } });
  assert.equal(await seen(a, "#attach"), true, "the attach button is shown");
  await a.setInputFiles("#file-input", { name: "screen part.png", mimeType: "image/png", buffer: png });
  const thumb = `#messages li .file-thumb[alt="screen part.png"]`;
  await b.waitForFunction((sel) => { const i = document.querySelector(sel); return i && i.complete && i.naturalWidth > 0; }, thumb, T);
  assert.equal(await b.evaluate((sel) => document.querySelector(sel).naturalWidth, thumb), 160, "bob's preview is the picture");
  await b.evaluate((sel) => document.querySelector(sel).scrollIntoView(), thumb);
  assert.equal(await seen(b, thumb), true, "bob sees the preview (computed style and box)");
  assert.equal(await seen(a, thumb), true, "alice sees her picture too");
  assert.equal(await a.evaluate(() => document.getElementById("uploads").hidden), true, "the progress row is gone once sent");
  await shot(b, "bob-sees-preview");
  await shot(a, "alice-shared-picture");
  log("an image upload shows a preview to the other user");

  await b.click(thumb);
  await b.waitForSelector("#file-viewer img", T);
  await b.waitForFunction(() => document.querySelector("#file-viewer img").naturalWidth > 0, null, T);
  assert.equal(await seen(b, "#file-viewer img"), true, "the full picture is shown");
  await shot(b, "bob-opens-picture");
  await b.keyboard.press("Escape");
  await b.waitForSelector("#file-viewer", { state: "detached", ...T });
  log("a click on the preview opens the picture full size; Escape closes it");

  // a document: a chip with name and size that downloads the file
  const text = "minutes of the meeting\n".repeat(200);
  await a.setInputFiles("#file-input", { name: "minutes.txt", mimeType: "text/plain", buffer: Buffer.from(text) });
  const chip = `#messages li .file-chip[title="Download minutes.txt"]`;
  await b.waitForSelector(chip, T);
  await b.evaluate((sel) => document.querySelector(sel).scrollIntoView(), chip);
  assert.equal(await seen(b, chip), true);
  const chipText = await b.locator(chip).innerText();
  assert.ok(chipText.includes("minutes.txt") && chipText.includes("4.5 KB"), `chip shows name and size: ${chipText}`);
  const [download] = await Promise.all([b.waitForEvent("download", T), b.click(chip)]);
  assert.equal(download.suggestedFilename(), "minutes.txt");
  const path = await download.path();
  assert.equal((await import("node:fs")).readFileSync(path, "utf8"), text, "the downloaded file is the one shared");
  await shot(b, "bob-sees-chip");
  log("another file shows as a chip with name and size, and downloads");

  // paste and drop: a File in the clipboard / a drag's data, as the browser gives them
  for (const [how, name] of [["paste", "pasted.png"], ["drop", "dropped.png"]]) {
    await a.evaluate(([how, name, bytes]) => {
      const dt = new DataTransfer();
      dt.items.add(new File([new Uint8Array(bytes)], name, { type: "image/png" }));
      if (how === "paste") document.getElementById("composer-text").dispatchEvent(new ClipboardEvent("paste", { clipboardData: dt, bubbles: true, cancelable: true }));
      else {
        const main = document.getElementById("main");
        main.dispatchEvent(new DragEvent("dragenter", { dataTransfer: dt, bubbles: true, cancelable: true }));
        main.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
      }
    }, [how, name, [...png]]);
    const sel = `#messages li .file-thumb[alt="${name}"]`;
    await b.waitForFunction((s) => { const i = document.querySelector(s); return i && i.complete && i.naturalWidth > 0; }, sel, T);
    log(`a picture ${how === "paste" ? "pasted into the message box" : "dropped on the room"} is shared`);
  }
  assert.equal(await a.evaluate(() => document.getElementById("main").classList.contains("dropping")), false, "the drop outline is gone");

  // over the limit (10 MB by default): refused before sending, said next to the composer
  const max = (await api(a, "GET", "/api/config")).body.max_upload_bytes;
  await a.setInputFiles("#file-input", { name: "huge.bin", mimeType: "application/octet-stream", buffer: Buffer.alloc(max + 1) });
  await a.waitForSelector("#uploads .upload.error", T);
  assert.equal(await seen(a, "#uploads .upload.error"), true, "the size error is shown");
  assert.match(await a.locator("#uploads .upload.error").innerText(), /huge\.bin \(10\.0 MB\) is too large to share: the limit is 10\.0 MB\./);
  await shot(a, "alice-too-large");
  await a.click("#uploads .upload.error button");
  assert.equal(await seen(a, "#uploads"), false, "dismissed");
  // the server refuses it as well (a page that does not check): 413, in words
  const refused = await a.evaluate(async ([room, n]) => {
    const r = await fetch(`/api/rooms/${room}/files?name=huge.bin`, { method: "POST", body: new Uint8Array(n),
      headers: { authorization: "Bearer " + localStorage.getItem("warren.token") } });
    return { status: r.status, body: await r.json() };
  }, [room, max + 1]);
  assert.equal(refused.status, 413);
  assert.equal(refused.body.error, "too_large");
  assert.deepEqual(dialogs, [], "no alert/confirm/prompt");
  log("a file over the limit is refused with a message by the composer, and with 413 by the server");

  // log out: the pictures of the previous user are not left on the page
  await a.click("#logout");
  await a.waitForSelector("#auth:not([hidden])", T);
  assert.equal(await a.locator("#messages li").count(), 0);
  assert.equal(await seen(a, "#file-viewer"), false);
  log("after log out no shared file of the previous user is on the page");
} catch (e) {
  console.error("not ok - " + (e && e.stack ? e.stack : e));
  process.exitCode = 1;
} finally {
  await browser.close();
  console.log(`browser (files): ${passed} passed, ${process.exitCode ? 1 : 0} failed`);
}
