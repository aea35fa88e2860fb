// Shared files in the chat: attach (button, drag and drop onto the room, paste), upload with a
// progress bar and errors shown next to the composer, image previews and download chips.
//
// A file is read with the sign-in token (fetch, then a blob: URL): an <img> or a link cannot
// send the Authorization header, and the token never goes into a URL. app.js calls
// `chatFiles.init(ctx)` once signed in, `chatFiles.node(message)` for a message with a file, and
// `chatFiles.reset()` on log out (the previous user's pictures leave memory with them).
"use strict";
window.chatFiles = (function () {
  const $ = (id) => document.getElementById(id);
  const el = (tag, props, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === "class") e.className = v; else if (k === "text") e.textContent = v;
      else if (k.startsWith("aria-") || k === "role" || k.startsWith("data-")) e.setAttribute(k, v); else e[k] = v;
    }
    for (const k of kids) if (k !== null && k !== undefined) e.append(k);
    return e;
  };
  // the types the server serves inline (it checks their first bytes too)
  const PREVIEW = new Set(["image/png", "image/jpeg", "image/gif", "image/webp"]);
  let ctx = null; // { token(), room(), writable() }
  let maxBytes = 10 * 1024 * 1024;
  let blobs = new Map(); // "room/id" -> Promise of a blob: URL
  let wired = false;

  function size(n) {
    if (n < 1024) return n + " B";
    if (n < 1024 * 1024) return (n / 1024).toFixed(n < 10240 ? 1 : 0) + " KB";
    return (n / 1024 / 1024).toFixed(1) + " MB";
  }

  // The file's bytes as a blob: URL, fetched once per page.
  function blobUrl(m) {
    const key = m.room + "/" + m.file.id;
    if (!blobs.has(key)) {
      const p = fetch("/api/files/" + encodeURIComponent(m.room) + "/" + encodeURIComponent(m.file.id),
        { headers: { authorization: "Bearer " + ctx.token() } })
        .then(async (r) => {
          if (!r.ok) {
            let why = r.statusText;
            try { why = (await r.json()).message || why; } catch (_) { /* not JSON */ }
            throw new Error(why);
          }
          return URL.createObjectURL(await r.blob());
        });
      p.catch(() => blobs.delete(key));
      blobs.set(key, p);
    }
    return blobs.get(key);
  }

  function download(m, chip) {
    chip.setAttribute("aria-busy", "true");
    blobUrl(m).then((url) => {
      const a = el("a", { href: url, download: m.file.name });
      document.body.append(a); a.click(); a.remove();
    }).catch((e) => showError(m.file.name + ": " + e.message))
      .finally(() => chip.removeAttribute("aria-busy"));
  }

  function extension(name) {
    const dot = name.lastIndexOf(".");
    return dot > 0 && name.length - dot <= 6 ? name.slice(dot + 1).toUpperCase() : "FILE";
  }

  function chip(m) {
    const b = el("button", { type: "button", class: "file-chip", title: "Download " + m.file.name,
      "aria-label": "Download " + m.file.name + ", " + size(m.file.size) },
    el("span", { class: "file-ext", text: extension(m.file.name), "aria-hidden": "true" }),
    el("span", { class: "file-name", text: m.file.name }),
    el("span", { class: "file-size", text: size(m.file.size) }));
    b.addEventListener("click", () => download(m, b));
    return b;
  }

  // The element showing message m's file: a thumbnail that opens the full picture, or a chip.
  function node(m) {
    const f = m.file;
    if (!PREVIEW.has(f.type)) return el("div", { class: "file" }, chip(m));
    const img = el("img", { class: "file-thumb", alt: f.name, decoding: "async" });
    const open = el("button", { type: "button", class: "file-image", title: f.name + " (" + size(f.size) + ")",
      "aria-label": "Open picture " + f.name }, img);
    const box = el("div", { class: "file", "data-file": f.id }, open);
    blobUrl(m).then((url) => { img.src = url; })
      .catch(() => box.replaceChildren(chip(m))); // no preview: still downloadable (or says why)
    open.addEventListener("click", () => blobUrl(m).then((url) => viewer(m, url)).catch(() => {}));
    return box;
  }

  // The full picture over the page; Escape, the close button or a click beside it closes it.
  function viewer(m, url) {
    const back = document.activeElement;
    const close = el("button", { type: "button", class: "secondary", text: "Close" });
    const save = el("a", { href: url, download: m.file.name, text: "Download" });
    const img = el("img", { src: url, alt: m.file.name });
    const box = el("div", { id: "file-viewer", role: "dialog", "aria-modal": "true", "aria-label": m.file.name },
      el("figure", {}, img, el("figcaption", {}, el("span", { text: m.file.name + " · " + size(m.file.size) }), save, close)));
    const done = () => { box.remove(); document.removeEventListener("keydown", onKey, true); if (back) back.focus(); };
    const onKey = (ev) => { if (ev.key === "Escape") { ev.preventDefault(); done(); } };
    close.addEventListener("click", done);
    box.addEventListener("click", (ev) => { if (ev.target === box) done(); });
    document.addEventListener("keydown", onKey, true);
    document.body.append(box);
    close.focus();
  }

  // ---- uploads --------------------------------------------------------------------------
  function row(name, ...kids) {
    const r = el("div", { class: "upload", role: "status" }, el("span", { class: "upload-name", text: name }), ...kids);
    $("uploads").append(r);
    $("uploads").hidden = false;
    return r;
  }
  function dropRow(r) {
    r.remove();
    $("uploads").hidden = !$("uploads").childElementCount;
  }
  function showError(text) {
    const x = el("button", { type: "button", class: "link", text: "dismiss", "aria-label": "Dismiss" });
    const r = row(text, x);
    r.classList.add("error");
    r.setAttribute("role", "alert");
    x.addEventListener("click", () => dropRow(r));
    setTimeout(() => dropRow(r), 15000);
  }

  let queue = Promise.resolve();
  function upload(file, room) {
    if (file.size > maxBytes) {
      showError(file.name + " (" + size(file.size) + ") is too large to share: the limit is " + size(maxBytes) + ".");
      return;
    }
    if (!file.size) { showError(file.name + " is empty."); return; }
    const bar = el("progress", { max: 100, value: 0 });
    const cancel = el("button", { type: "button", class: "link", text: "cancel", "aria-label": "Cancel the upload of " + file.name });
    const r = row(file.name + " (" + size(file.size) + ")", bar, cancel);
    queue = queue.then(() => new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/rooms/" + encodeURIComponent(room) + "/files?name=" + encodeURIComponent(file.name || "pasted"));
      xhr.setRequestHeader("authorization", "Bearer " + ctx.token());
      xhr.setRequestHeader("content-type", file.type || "application/octet-stream");
      xhr.upload.onprogress = (ev) => { if (ev.lengthComputable) bar.value = Math.round(100 * ev.loaded / ev.total); };
      const end = (error) => { dropRow(r); if (error) showError(file.name + ": " + error); resolve(); };
      xhr.onload = () => {
        if (xhr.status === 201) return end(null);
        let why = xhr.statusText || "upload failed";
        try { why = JSON.parse(xhr.responseText).message || why; } catch (_) { /* not JSON */ }
        end(why);
      };
      xhr.onerror = () => end("the upload was interrupted");
      xhr.onabort = () => end(null);
      cancel.onclick = () => xhr.abort();
      xhr.send(file);
    }));
  }
  function uploadAll(files) {
    const room = ctx && ctx.room();
    if (!room || !ctx.writable()) return;
    for (const f of files) upload(f, room);
  }

  function wire() {
    if (wired) return;
    wired = true;
    const input = $("file-input");
    $("attach").addEventListener("click", () => input.click());
    input.addEventListener("change", () => { uploadAll([...input.files]); input.value = ""; });
    const main = $("main");
    const hasFiles = (ev) => ev.dataTransfer && [...ev.dataTransfer.types].includes("Files");
    let depth = 0;
    main.addEventListener("dragenter", (ev) => {
      if (!hasFiles(ev) || !ctx.room() || !ctx.writable()) return;
      ev.preventDefault(); depth++; main.classList.add("dropping");
    });
    main.addEventListener("dragover", (ev) => { if (hasFiles(ev) && ctx.room()) ev.preventDefault(); });
    main.addEventListener("dragleave", () => { if (--depth <= 0) { depth = 0; main.classList.remove("dropping"); } });
    main.addEventListener("drop", (ev) => {
      if (!hasFiles(ev)) return;
      ev.preventDefault(); depth = 0; main.classList.remove("dropping");
      uploadAll([...ev.dataTransfer.files]);
    });
    $("composer-text").addEventListener("paste", (ev) => {
      const files = [...((ev.clipboardData && ev.clipboardData.files) || [])];
      if (!files.length) return; // text: pasted as usual
      ev.preventDefault();
      uploadAll(files);
    });
  }

  function init(c) {
    ctx = c;
    wire();
    fetch("/api/config").then((r) => r.json()).then((c) => { if (c.max_upload_bytes) maxBytes = c.max_upload_bytes; }).catch(() => {});
  }

  function reset() {
    for (const p of blobs.values()) p.then((u) => URL.revokeObjectURL(u)).catch(() => {});
    blobs = new Map();
    const v = $("file-viewer");
    if (v) v.remove();
    $("uploads").replaceChildren();
    $("uploads").hidden = true;
  }

  return { init, node, reset, size };
})();
