// warren chat UI: REST for accounts/rooms/history, one WebSocket for everything live (or, where
// WebSocket is blocked, Server-Sent Events plus POSTs of the same frames).
//
// Sections: state · REST · auth · rooms (sidebar) · people · message store · message list
// (windowed, incremental: one DOM node per message, updated in place) · message updates
// (`applyMessage`: new, edit, delete and any later kind such as streamed chunks) · composer ·
// notifications · transport (WebSocket, or the fallback) · start.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const el = (tag, props, ...kids) => {
    const e = document.createElement(tag);
    if (props) for (const [k, v] of Object.entries(props)) {
      if (k === "class") e.className = v; else if (k === "text") e.textContent = v;
      else if (k.startsWith("data-")) e.dataset[k.slice(5)] = v; else if (k.startsWith("aria-") || k === "role") e.setAttribute(k, v);
      else e[k] = v;
    }
    for (const k of kids) if (k !== null && k !== undefined) e.append(k);
    return e;
  };
  const WINDOW = 300; // messages kept in the DOM at most
  const GROUP_MS = 5 * 60 * 1000;

  // ---- state -------------------------------------------------------------------------
  const S = {};
  function resetState() {
    Object.assign(S, {
      token: localStorage.getItem("warren.token"),
      user: localStorage.getItem("warren.user"),
      rooms: new Map(), // id -> room (see room())
      current: null,
      presence: {},
      users: [],
      ws: null,
      backoff: 500,
      // the fallback transport (WebSocket never opened on this page): the event stream, its
      // session id, and frames waiting to be posted to it
      wsOpened: false,
      fallback: false,
      es: null,
      session: null,
      outbox: [],
      posting: false,
      typing: new Map(), // "room|user" -> time
      pending: new Map(), // client_id -> room
      // every send not yet "sent", by client_id: sent again after a reconnect (the front end or
      // broker node may have gone away before confirming it); the server derives the message id
      // from the client_id, so one that did make it is not posted twice
      inflight: new Map(),
      lastTyping: 0,
      editing: null,
      admin: false,
      replyTo: null, // the message the next one answers
      growing: new Map(), // id of a bot's reply still streaming -> { room, at: when it last grew }
      staleReplyMs: 60000, // the server's (hello's stale_reply_ms)
    });
  }
  resetState();

  // ---- REST --------------------------------------------------------------------------
  async function api(method, path, body) {
    const headers = { "content-type": "application/json" };
    if (S.token) headers.authorization = "Bearer " + S.token;
    const resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    let data = null;
    try { data = await resp.json(); } catch (_) { /* 204 */ }
    if (resp.status === 401 && path !== "/api/login" && path !== "/api/register" && path !== "/api/password") logout(false);
    if (!resp.ok) throw Object.assign(new Error((data && data.message) || resp.statusText), { status: resp.status });
    return data;
  }

  function toast(text) {
    const t = el("div", { class: "toast", text });
    $("toasts").append(t);
    setTimeout(() => t.remove(), 6000);
  }

  // ---- seen offsets and the last open room, kept per user ----------------------------
  const seenKey = () => "warren.seen." + S.user;
  function seen() { try { return JSON.parse(localStorage.getItem(seenKey()) || "{}"); } catch (_) { return {}; } }
  function setSeen(room, offset) {
    const s = seen();
    if (s[room] === undefined || offset > s[room]) { s[room] = offset; localStorage.setItem(seenKey(), JSON.stringify(s)); }
  }
  const lastRoomKey = () => "warren.room." + S.user;

  // ---- auth --------------------------------------------------------------------------
  $("auth-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const action = ev.submitter && ev.submitter.dataset.action === "register" ? "register" : "login";
    $("auth-error").textContent = "";
    const body = { username: $("username").value.trim(), password: $("password").value };
    if (action === "register" && $("invite-code").value.trim()) body.invite = $("invite-code").value.trim();
    try {
      const r = await api("POST", "/api/" + action, body);
      resetState();
      S.token = r.token; S.user = r.username;
      localStorage.setItem("warren.token", r.token); localStorage.setItem("warren.user", r.username);
      $("password").value = "";
      start();
    } catch (e) {
      $("auth-error").textContent = e.message;
    }
  });

  // Log out: nothing of this user stays on the page (a shared computer's next user sees the
  // form alone).
  function logout(tellServer) {
    if (tellServer && S.token) api("POST", "/api/logout").catch(() => {});
    localStorage.removeItem("warren.token");
    window.chatFiles.reset();
    if (S.ws) { S.ws.onclose = null; S.ws.close(); }
    if (S.es) S.es.close();
    resetState();
    S.token = null;
    for (const id of ["my-rooms", "public-rooms", "people", "messages", "room-info", "room-actions", "typing", "live", "me", "room-panel", "results", "toasts", "admin-users", "password-result"]) $(id).replaceChildren();
    $("room-title").textContent = "warren chat";
    $("username").value = ""; $("password").value = "";
    $("settings").hidden = true;
    $("app").hidden = true; $("auth").hidden = false;
    showRoomChrome(false);
    prepareAuth();
    updateTitle();
  }
  $("logout").addEventListener("click", () => logout(true));

  // ---- rooms (sidebar) ---------------------------------------------------------------
  function room(view) {
    let r = S.rooms.get(view.id);
    if (!r) {
      r = { view, list: [], byId: new Map(), unread: 0, mentions: 0, loaded: false, nextBefore: null, subscribed: false, othersRead: -1, delivered: new Set() };
      S.rooms.set(view.id, r);
    } else r.view = Object.assign(r.view, view);
    return r;
  }
  const isMember = (r) => r.view.members && r.view.members.includes(S.user);
  const LOCK = '<svg class="icon-lock" viewBox="0 0 16 16" aria-hidden="true"><path d="M4 7V5a4 4 0 0 1 8 0v2h1v8H3V7h1zm2 0h4V5a2 2 0 0 0-4 0v2z"/></svg>';
  function roomName(v) {
    if (v.direct) return v.members.filter((m) => m !== S.user).join(", ") || v.name;
    return v.name;
  }
  function roomLabel(v) { return (v.direct ? "@ " : v.public ? "# " : "") + roomName(v); }
  // The room's name with its kind: "#" public, a lock (inline SVG, no emoji font needed) private.
  function roomLabelNodes(v) {
    const frag = document.createDocumentFragment();
    if (!v.public && !v.direct) {
      const s = el("span", { "aria-label": "private room", role: "img" }); s.innerHTML = LOCK; frag.append(s, " ");
    }
    frag.append(roomLabel(v));
    return frag;
  }

  function renderRooms() {
    const mine = [], pub = [];
    const all = [...S.rooms.values()].sort((a, b) => roomName(a.view).localeCompare(roomName(b.view)));
    for (const r of all) {
      if (isMember(r)) {
        const b = el("button", { class: "room" + (r.unread ? " unread" : ""), "data-room": r.view.id }, roomLabelNodes(r.view));
        b.addEventListener("click", () => openRoom(r.view.id));
        if (S.current === r.view.id) b.setAttribute("aria-current", "true");
        const li = el("li", null, b);
        if (r.unread > 0) {
          li.append(el("span", { class: "badge" + (r.mentions ? " mention" : ""), "data-unread": r.view.id, text: String(r.unread),
            "aria-label": r.unread + " unread" + (r.mentions ? ", mentioned" : "") }));
        }
        mine.push(li);
      } else if (r.view.public) {
        const b = el("button", { class: "room", "data-room": r.view.id, title: "Join " + r.view.name }, roomLabelNodes(r.view));
        b.addEventListener("click", () => joinRoom(r.view.id));
        pub.push(el("li", null, b, el("span", { class: "muted", text: "join" })));
      }
    }
    $("my-rooms").replaceChildren(...mine);
    if (!mine.length) $("my-rooms").append(el("li", { class: "muted", text: "None yet: join or create one." }));
    $("public-rooms").replaceChildren(...pub);
    if (!pub.length) $("public-rooms").append(el("li", { class: "muted", text: "No other public rooms." }));
    updateTitle();
  }

  // Unread counts change with every message of a room that is not being looked at, which a
  // busy room sends thousands a second: the list (sorted, rebuilt) is drawn once per 50 ms
  // for them, not once per message, or the page falls behind its socket.
  let roomsDrawLater = 0;
  function renderRoomsSoon() {
    if (roomsDrawLater) return;
    roomsDrawLater = setTimeout(() => { roomsDrawLater = 0; renderRooms(); }, 50);
  }

  function updateTitle() {
    let total = 0;
    for (const r of S.rooms.values()) if (isMember(r)) total += r.unread;
    const r = S.rooms.get(S.current);
    const base = r ? roomLabel(r.view) + " · warren chat" : "warren chat";
    document.title = (total ? "(" + total + ") " : "") + base;
  }

  async function refreshRooms() {
    const list = await api("GET", "/api/rooms");
    for (const v of list) room(v);
    renderRooms();
  }

  async function joinRoom(id, invite) {
    try {
      const v = await api("POST", "/api/rooms/" + encodeURIComponent(id) + "/join", invite ? { invite } : undefined);
      room(v); subscribe(id); renderRooms(); openRoom(id);
    } catch (e) { toast("Could not join: " + e.message); }
  }

  async function directChat(name) {
    try {
      const v = await api("POST", "/api/dm/" + encodeURIComponent(name));
      room(v); subscribe(v.id); renderRooms(); openRoom(v.id);
    } catch (e) { toast(e.message); }
  }

  $("new-room").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const v = await api("POST", "/api/rooms", {
        name: $("new-room-name").value, public: !$("new-room-private").checked,
        retention_days: Number($("new-room-days").value || 0),
      });
      $("new-room-name").value = "";
      $("new-room-box").open = false;
      room(v); subscribe(v.id); renderRooms(); openRoom(v.id);
    } catch (e) { toast(e.message); }
  });

  const PLACEHOLDER = $("composer-text").placeholder;
  function showRoomChrome(on) {
    $("empty").hidden = on;
    $("room-bar").hidden = !on;
    $("list-wrap").hidden = !on;
    if (!on) { $("room-panel").hidden = true; $("older").hidden = true; $("jump").hidden = true; }
    $("composer-text").disabled = !on; $("send").disabled = !on; $("attach").disabled = !on;
  }

  function retentionText(v) {
    const s = typeof v.retention_seconds === "number" ? v.retention_seconds : (v.retention_days || 0) * 86400;
    if (!s) return "forever";
    if (s % 86400 === 0) return s / 86400 + (s === 86400 ? " day" : " days");
    if (s % 3600 === 0) return s / 3600 + (s === 3600 ? " hour" : " hours");
    if (s % 60 === 0) return s / 60 + (s === 60 ? " minute" : " minutes");
    return s + " seconds";
  }

  function renderRoomInfo(r) {
    const n = r.view.members.length;
    $("room-info").replaceChildren((r.view.archived ? "Archived, read-only · " : "") + n + (n === 1 ? " member" : " members") + " · messages kept " +
      retentionText(r.view));
    const writable = !r.view.archived;
    $("composer-text").disabled = !writable; $("send").disabled = !writable; $("attach").disabled = !writable;
    $("composer-text").placeholder = writable ? PLACEHOLDER : "This room is archived: it can be read, not written to.";
    const actions = [];
    if (!r.view.direct) {
      const people = el("button", { class: "secondary", id: "room-people", text: canManage(r) ? "Manage" : r.view.invite ? "Members & invite" : "Members", type: "button" });
      people.addEventListener("click", () => toggleRoomPanel(r));
      actions.push(people);
    }
    const leave = el("button", { class: "secondary", id: "leave-room", text: r.view.direct ? "Close conversation" : "Leave room", type: "button" });
    leave.addEventListener("click", () => leaveRoom(r));
    actions.push(leave);
    $("room-actions").replaceChildren(...actions);
    if (!$("room-panel").hidden) renderRoomPanel(r);
  }

  function toggleRoomPanel(r) {
    $("room-panel").hidden = !$("room-panel").hidden;
    if (!$("room-panel").hidden) renderRoomPanel(r);
  }

  const canManage = (r) => !r.view.direct && (r.view.created_by === S.user || S.admin);
  const roomApi = (r, method, tail, body) => api(method, "/api/rooms/" + encodeURIComponent(r.view.id) + (tail || ""), body);

  // Members, invitation (link with a copy button, or add someone by name); for the owner and
  // administrators: rename, archive, delete, remove a member, a new invitation code.
  function renderRoomPanel(r) {
    const manage = canManage(r);
    const members = r.view.members.map((m) => {
      const li = el("li", null, el("span", { text: m + (m === r.view.created_by ? " (owner)" : "") }));
      if (manage && m !== S.user) {
        const rm = el("button", { type: "button", class: "link", text: "remove", "aria-label": "Remove " + m, "data-remove": m });
        rm.addEventListener("click", async () => {
          try { room(await roomApi(r, "DELETE", "/members/" + encodeURIComponent(m))); renderRoomInfo(r); } catch (e) { toast(e.message); }
        });
        li.append(" ", rm);
      }
      return li;
    });
    const kids = [el("strong", { text: "Members" }), el("ul", null, ...members)];
    if (r.view.invite) {
      const link = location.origin + "/#join=" + r.view.id + ":" + r.view.invite;
      const input = el("input", { id: "invite-link", value: link, readOnly: true, "aria-label": "Invitation link" });
      const copy = el("button", { type: "button", id: "copy-invite", text: "Copy link" });
      copy.addEventListener("click", async () => {
        input.select();
        try { await navigator.clipboard.writeText(link); copy.textContent = "Copied"; } catch (_) { document.execCommand("copy"); copy.textContent = "Copied"; }
        setTimeout(() => { copy.textContent = "Copy link"; }, 2000);
      });
      kids.push(el("label", { text: "Invitation link", htmlFor: "invite-link" }), el("div", { class: "row" }, input, copy));
    }
    if (!r.view.public) {
      const name = el("input", { id: "invite-name", placeholder: "user name", "aria-label": "Add a person by name" });
      const add = el("button", { type: "submit", text: "Add" });
      const form = el("form", { class: "row", id: "invite-form" }, name, add);
      form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        try {
          const v = await api("POST", "/api/rooms/" + encodeURIComponent(r.view.id) + "/members", { user: name.value.trim() });
          room(v); name.value = ""; renderRoomInfo(r);
        } catch (e) { toast(e.message); }
      });
      kids.push(el("label", { text: "Add a person by name", htmlFor: "invite-name" }), form);
    }
    if (manage) {
      const name = el("input", { id: "rename-room", value: r.view.name, maxLength: 64, "aria-label": "Room name" });
      const rename = el("form", { class: "row" }, name, el("button", { type: "submit", text: "Rename" }));
      rename.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        try { room(await roomApi(r, "PATCH", "", { name: name.value })); } catch (e) { toast(e.message); }
      });
      const archive = el("button", { type: "button", class: "secondary", id: "archive-room", text: r.view.archived ? "Unarchive" : "Archive (read-only)" });
      archive.addEventListener("click", async () => {
        try { room(await roomApi(r, "PATCH", "", { archived: !r.view.archived })); renderRoomInfo(r); } catch (e) { toast(e.message); }
      });
      const del = el("button", { type: "button", class: "danger", id: "delete-room", text: "Delete room" });
      del.addEventListener("click", () => {
        const yes = el("button", { type: "button", class: "danger", text: "Delete for everyone" });
        const no = el("button", { type: "button", class: "secondary", text: "Cancel" });
        const box = el("div", { class: "row", role: "group", "aria-label": "Delete this room?" }, el("span", { text: "Delete “" + r.view.name + "” and its history for everyone?" }), yes, no);
        yes.addEventListener("click", async () => { try { await roomApi(r, "DELETE"); lostRoom(r.view.id, true); } catch (e) { toast(e.message); } });
        no.addEventListener("click", () => box.remove());
        del.after(box);
        no.focus();
      });
      const tools = el("div", { class: "row" }, archive, del);
      if (!r.view.public) {
        const rotate = el("button", { type: "button", class: "secondary", id: "rotate-invite", text: "New invitation link" });
        rotate.addEventListener("click", async () => { try { room(await roomApi(r, "POST", "/invite")); renderRoomInfo(r); toast("The old invitation link no longer works."); } catch (e) { toast(e.message); } });
        tools.prepend(rotate);
      }
      kids.push(el("strong", { text: "Manage" }), rename, tools);
    }
    $("room-panel").replaceChildren(...kids);
  }

  async function leaveRoom(r) {
    try {
      await api("POST", "/api/rooms/" + encodeURIComponent(r.view.id) + "/leave");
      r.view.members = r.view.members.filter((m) => m !== S.user);
      lostRoom(r.view.id);
    } catch (e) { toast(e.message); }
  }

  // A room this user is no longer in (or that is gone): out of the list, closed if it was open.
  function lostRoom(id, gone) {
    const r = S.rooms.get(id);
    if (r) { r.subscribed = false; r.list = []; r.byId.clear(); r.loaded = false; r.unread = 0; r.mentions = 0; if (gone || !r.view.public) S.rooms.delete(id); }
    send({ type: "unsubscribe", room: id });
    if (S.current === id) closeRoom();
    renderRooms();
  }

  function closeRoom() {
    S.current = null;
    $("room-title").textContent = "warren chat";
    $("messages").replaceChildren();
    showRoomChrome(false);
    localStorage.removeItem(lastRoomKey());
    updateTitle();
  }

  async function openRoom(id) {
    const r = S.rooms.get(id);
    if (!r || !isMember(r)) return;
    S.current = id;
    localStorage.setItem(lastRoomKey(), id);
    $("sidebar").classList.remove("open"); $("menu").setAttribute("aria-expanded", "false");
    $("room-title").replaceChildren(roomLabelNodes(r.view));
    $("room-panel").hidden = true;
    showRoomChrome(true);
    renderRoomInfo(r);
    cancelReply();
    renderTyping();
    if (!r.loaded) { try { await loadOlder(id); } catch (e) { toast(e.message); } }
    if (S.current !== id) return;
    renderWindow(r, r.list.length);
    markRead(id);
    renderRooms();
    if (window.matchMedia("(min-width: 641px)").matches) $("composer-text").focus();
  }

  // ---- search (on the server, over the rooms this user is in) -------------------------
  $("search-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const q = $("search").value.trim();
    const here = $("search-here").checked && S.current;
    if (q.length < 2) return;
    try {
      const res = await api("GET", "/api/search?q=" + encodeURIComponent(q) + (here ? "&room=" + encodeURIComponent(S.current) : ""));
      showResults(q, res.messages, res.complete);
    } catch (e) { toast(e.message); }
  });
  // Open `roomId` at message `id`: pages of older messages are loaded until it is there.
  async function jumpTo(roomId, id) {
    await openRoom(roomId);
    const r = S.rooms.get(roomId);
    if (!r || S.current !== roomId) return;
    try {
      for (let pages = 0; !r.byId.has(id) && r.nextBefore !== null && pages < 100; pages++) await loadOlder(roomId);
    } catch (e) { toast(e.message); }
    const m = r.byId.get(id);
    if (!m || S.current !== roomId) { toast("That message is no longer in the room."); return; }
    const i = r.list.indexOf(m);
    renderWindow(r, Math.min(r.list.length, i + 20));
    const node = nodeOf(id);
    if (node) { node.scrollIntoView({ block: "center" }); node.classList.add("found"); node.focus({ preventScroll: true }); }
  }
  function showResults(q, hits, complete) {
    const close = el("button", { type: "button", class: "link", text: "close", "aria-label": "Close the search results" });
    close.addEventListener("click", () => { $("results").hidden = true; });
    const items = hits.map((m) => {
      const r = S.rooms.get(m.room);
      const b = el("button", { type: "button", class: "hit" },
        el("span", { class: "muted", text: (r ? roomLabel(r.view) : m.room) + " · " + m.author + " · " + new Date(m.ts).toLocaleString() }),
        el("span", { text: m.snippet || m.text.slice(0, 200) }));
      b.addEventListener("click", () => { $("results").hidden = true; jumpTo(m.room, m.id); });
      return el("li", null, b);
    });
    $("results").replaceChildren(el("div", { class: "row" }, el("strong", { text: hits.length + (hits.length === 1 ? " message" : " messages") + " with “" + q + "”" }), close),
      el("ul", null, ...items));
    if (complete === false) $("results").append(el("p", { class: "muted", text: "Only the most recent messages of each room were searched." }));
    $("results").hidden = false;
    $("sidebar").classList.remove("open");
  }

  // ---- people ------------------------------------------------------------------------
  function renderPeople() {
    const q = $("people-filter").value.trim().toLowerCase();
    const rank = { online: 0, away: 1, offline: 2 };
    const list = S.users.filter((u) => u.username !== S.user && u.username.includes(q))
      .map((u) => ({ name: u.username, status: S.presence[u.username] || "offline" }))
      .sort((a, b) => rank[a.status] - rank[b.status] || a.name.localeCompare(b.name));
    $("people").replaceChildren(...list.map(({ name, status }) => {
      const b = el("button", { class: "room", text: name, "data-user": name, "data-status": status, title: "Chat with " + name + " (" + status + ")" });
      b.addEventListener("click", () => directChat(name));
      return el("li", null, el("span", { class: "dot " + status, role: "img", "aria-label": status }), b);
    }));
    if (!list.length) $("people").append(el("li", { class: "muted", text: q ? "No one matches." : "No one else yet." }));
  }
  $("people-filter").addEventListener("input", renderPeople);
  async function refreshPeople() {
    try { S.users = await api("GET", "/api/users"); renderPeople(); } catch (_) { /* next event refreshes */ }
  }

  // ---- message store -----------------------------------------------------------------
  // r.list: messages sorted by stream offset, pending ones (no offset yet) at the end.
  const offsetOf = (m) => (typeof m.offset === "number" ? m.offset : Infinity);
  function insertIndex(r, m) {
    const o = offsetOf(m);
    let lo = 0, hi = r.list.length;
    if (hi === 0 || offsetOf(r.list[hi - 1]) <= o) return hi;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (offsetOf(r.list[mid]) <= o) lo = mid + 1; else hi = mid; }
    return lo;
  }
  // `older`: from a history page (it goes above the rendered window, never into it).
  function store(r, m, older) {
    const old = r.byId.get(m.id);
    watchGrowth(r, m);
    if (old) { Object.assign(old, m); return { msg: old, fresh: false }; }
    const i = insertIndex(r, m);
    r.list.splice(i, 0, m);
    r.byId.set(m.id, m);
    if (r.win) {
      // before the rendered window (an older page): the window shifts; inside it: it grows
      if (i < r.win.lo || (older && i === r.win.lo)) { r.win.lo++; r.win.hi++; } else if (i < r.win.hi) r.win.hi++;
    }
    return { msg: m, fresh: true, index: i };
  }

  // A bot's reply that stops growing (the bot, or the front end following it, died) is marked
  // interrupted after the server's own timeout: never "writing…" forever.
  function watchGrowth(r, m) {
    if (m.streaming) S.growing.set(m.id, { room: r.view.id, at: Date.now() }); else S.growing.delete(m.id);
  }
  setInterval(() => {
    const now = Date.now();
    for (const [id, g] of S.growing) {
      if (now - g.at <= S.staleReplyMs) continue;
      S.growing.delete(id);
      const r = S.rooms.get(g.room), m = r && r.byId.get(id);
      if (!m || !m.streaming) continue;
      m.streaming = false; m.interrupted = true;
      if (S.current === g.room) refreshAt(r, r.list.indexOf(m));
    }
  }, 1000);
  function unstore(r, id) {
    const m = r.byId.get(id);
    if (!m) return;
    const i = r.list.indexOf(m);
    r.byId.delete(id);
    if (i >= 0) {
      r.list.splice(i, 1);
      if (r.win) { if (i < r.win.lo) { r.win.lo--; r.win.hi--; } else if (i < r.win.hi) r.win.hi--; }
    }
    const node = nodeOf(id);
    if (node) node.remove();
  }

  // The room's retention dropped every message older than `beforeTs` (ms): so does the page.
  function expire(roomId, beforeTs) {
    const r = S.rooms.get(roomId);
    if (!r || typeof beforeTs !== "number") return;
    const gone = r.list.filter((m) => !m.pending && typeof m.offset === "number" && m.ts < beforeTs);
    for (const m of gone) unstore(r, m.id);
    if (!gone.length || S.current !== roomId) return;
    // day separators left with no message under them
    for (const d of [...listEl.querySelectorAll("li.day")]) {
      const next = d.nextElementSibling;
      if (!next || next.classList.contains("day")) d.remove();
    }
    const first = r.win && r.list[r.win.lo];
    const fn = first && nodeOf(first.id);
    if (fn && !(fn.previousElementSibling && fn.previousElementSibling.classList.contains("day"))) fn.before(dayNode(first.ts));
    updateOlderButton(r);
  }

  async function loadOlder(id) {
    const r = S.rooms.get(id);
    const q = r.nextBefore !== null && r.loaded ? "&before=" + r.nextBefore : "";
    const page = await api("GET", "/api/rooms/" + encodeURIComponent(id) + "/messages?limit=50" + q);
    const added = [];
    for (const m of page.messages) { const s = store(r, m, true); if (s.fresh) added.push(s.msg); }
    r.nextBefore = page.next_before === undefined ? null : page.next_before;
    r.loaded = true;
    return added.length;
  }

  const mentionRe = () => new RegExp("(^|[^\\w-])@" + S.user.replace(/[-]/g, "\\-") + "(?![\\w-])", "i");
  const mentionsMe = (m) => !m.deleted && typeof m.text === "string" && mentionRe().test(m.text);

  // ---- message list: a window of r.list rendered, one node per message ---------------
  // r.win = {lo, hi}: r.list[lo..hi) is in the DOM. New messages are appended while the reader
  // is at the bottom; scrolled up, nothing moves and a "New messages" button appears. Older
  // messages are prepended with the scroll position kept.
  const listEl = $("messages");
  const atBottom = () => listEl.scrollHeight - listEl.scrollTop - listEl.clientHeight < 60;
  const nodeOf = (id) => listEl.querySelector('li.msg[data-id="' + CSS.escape(id) + '"]');
  const dayOf = (ts) => new Date(ts).toDateString();
  function dayLabel(ts) {
    const d = new Date(ts), today = new Date(), y = new Date(Date.now() - 86400000);
    if (d.toDateString() === today.toDateString()) return "Today";
    if (d.toDateString() === y.toDateString()) return "Yesterday";
    return d.toLocaleDateString(undefined, { weekday: "long", year: "numeric", month: "long", day: "numeric" });
  }
  function hue(name) { let h = 0; for (const c of name) h = (h * 31 + c.charCodeAt(0)) % 360; return h; }
  function initials(name) {
    const parts = name.split(/[-_.\s]+/).filter(Boolean);
    return ((parts[0] || "?")[0] + (parts.length > 1 ? parts[1][0] : (parts[0] || "")[1] || "")).toUpperCase();
  }
  function statusText(s) { return { sending: "sending…", sent: "✓ sent", delivered: "✓✓ delivered", read: "✓✓ read" }[s]; }
  function statusOf(r, m) {
    if (m.pending) return "sending";
    if (typeof m.offset === "number" && m.offset <= r.othersRead) return "read";
    if (r.delivered.has(m.id)) return "delivered";
    return "sent";
  }
  const grouped = (prev, m) => prev && !prev.deleted && prev.author === m.author && !!prev.bot === !!m.bot &&
    m.ts - prev.ts < GROUP_MS && dayOf(prev.ts) === dayOf(m.ts);

  function messageNode(r, m, prev) {
    const mine = m.author === S.user && !m.bot;
    const li = el("li", { class: "msg" + (mine ? " mine" : "") + (grouped(prev, m) ? " grouped" : " first") + (!mine && mentionsMe(m) ? " mentioned" : ""),
      "data-id": m.id, tabIndex: -1 });
    if (typeof m.offset === "number") li.dataset.offset = m.offset;
    const av = el("span", { class: "avatar", text: initials(m.author), "aria-hidden": "true" });
    av.style.background = "hsl(" + hue(m.author) + " 45% 42%)";
    const when = new Date(m.ts);
    const meta = el("div", { class: "meta" },
      el("span", { class: "author", text: m.author }),
      m.bot ? el("span", { class: "bot", text: "bot" }) : null,
      el("time", { class: "full", dateTime: when.toISOString(), title: when.toLocaleString(), text: when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) }),
      m.edited && !m.deleted ? el("span", { class: "edited", text: "(edited)" }) : null);
    if (mine) { const st = statusOf(r, m); meta.append(el("span", { class: "status", "data-status": st, text: statusText(st) })); }
    const actions = el("span", { class: "actions" });
    if (!m.deleted && !m.pending && !r.view.archived) {
      const rp = el("button", { class: "link", text: "reply", type: "button", "aria-label": "Reply to " + m.author });
      rp.addEventListener("click", () => startReply(r, m));
      const re = el("button", { class: "link", text: "react", type: "button", "aria-label": "React to this message", "aria-haspopup": "true" });
      re.addEventListener("click", () => pickReaction(r, m, re));
      actions.append(rp, re);
    }
    if (mine && !m.deleted && !m.pending) {
      const ed = el("button", { class: "link", text: "edit", type: "button", "aria-label": "Edit message" });
      ed.addEventListener("click", () => startEdit(r, m));
      const del = el("button", { class: "link", text: "delete", type: "button", "aria-label": "Delete message" });
      del.addEventListener("click", () => askDelete(r, m));
      actions.append(ed, del);
    }
    if (actions.childNodes.length) meta.append(actions);
    // issue 19: a bot's reply streamed chunk by chunk grows in place ("writing…"), or was cut short
    if (m.streaming) { li.classList.add("streaming"); meta.append(el("span", { class: "streaming-mark", text: "writing…" })); }
    if (m.interrupted) {
      li.classList.add("interrupted");
      meta.append(el("span", { class: "interrupted-mark", text: "interrupted", title: "The bot stopped before it finished" }));
    }
    const body = el("div", { class: "text" });
    if (m.deleted) { body.className = "text deleted"; body.textContent = "message deleted"; }
    else body.append(window.renderMarkdown(m.text));
    if (m.file && !m.deleted) body.append(window.chatFiles.node(m)); // a shared file (files.js)
    li.append(av, meta);
    if (m.reply_to) {
      const q = r.byId.get(m.reply_to);
      li.append(el("div", { class: "quote", "data-reply": m.reply_to },
        q ? (q.author + ": " + (q.deleted ? "message deleted" : q.text.slice(0, 140))) : "a reply to an earlier message"));
    }
    li.append(body);
    const kinds = Object.entries(m.reactions || {});
    if (kinds.length && !m.deleted) {
      li.append(el("div", { class: "reactions" }, ...kinds.map(([emoji, who]) => {
        const minePressed = who.includes(S.user);
        const b = el("button", { type: "button", text: emoji + " " + who.length, title: who.join(", "), "aria-pressed": String(minePressed),
          "aria-label": emoji + " from " + who.join(", ") });
        b.addEventListener("click", () => send({ type: "react", room: m.room, id: m.id, emoji, on: !minePressed }));
        return b;
      })));
    }
    return li;
  }

  function dayNode(ts) { return el("li", { class: "day", "data-day": dayOf(ts), role: "separator", text: dayLabel(ts) }); }

  // The nodes for r.list[from..to): day separators and messages.
  function nodesFor(r, from, to) {
    const out = [];
    for (let i = from; i < to; i++) {
      const m = r.list[i], prev = i > 0 ? r.list[i - 1] : null;
      if (!prev || dayOf(prev.ts) !== dayOf(m.ts)) out.push(dayNode(m.ts));
      out.push(messageNode(r, m, prev));
    }
    return out;
  }

  // Render the window ending at `hi` (a room opened, or "jump to the newest").
  function renderWindow(r, hi) {
    r.win = { lo: Math.max(0, hi - 60), hi };
    listEl.replaceChildren(...nodesFor(r, r.win.lo, r.win.hi));
    listEl.scrollTop = listEl.scrollHeight;
    $("jump").hidden = true;
    updateOlderButton(r);
  }
  function updateOlderButton(r) { $("older").hidden = !(r.win && (r.win.lo > 0 || r.nextBefore !== null)); }

  // Re-render the node of r.list[i] in place (edit, delete, status, grouping change).
  function refreshAt(r, i) {
    if (!r.win || i < r.win.lo || i >= r.win.hi) return;
    const m = r.list[i], node = nodeOf(m.id);
    const fresh = messageNode(r, m, i > 0 ? r.list[i - 1] : null);
    if (node) node.replaceWith(fresh);
    if (S.editing && S.editing.id === m.id) S.editing = null;
  }

  // A message stored at index i of the open room: shown if it belongs to the window.
  function showStored(r, i) {
    if (!r.win) return;
    if (i > r.win.hi) { $("jump").hidden = false; return; } // the reader is far up: the newest are not rendered
    const wasBottom = atBottom();
    if (i < r.win.lo) { updateOlderButton(r); return; }
    // appended to the window (store() moved hi already for inserts inside it)
    if (i === r.win.hi) r.win.hi = i + 1;
    const m = r.list[i], prev = i > 0 ? r.list[i - 1] : null;
    const nodes = [];
    if (!prev || dayOf(prev.ts) !== dayOf(m.ts)) nodes.push(dayNode(m.ts));
    nodes.push(messageNode(r, m, prev));
    const next = i + 1 < r.win.hi ? nodeOf(r.list[i + 1].id) : null;
    if (next) {
      const sep = next.previousElementSibling;
      if (sep && sep.classList.contains("day")) {
        // `next` opens a day: the new message goes after that separator if it is of that
        // day (it needs no separator of its own then), before it otherwise
        if (sep.dataset.day === dayOf(m.ts)) next.before(...nodes.filter((n) => !n.classList.contains("day")));
        else sep.before(...nodes);
      } else next.before(...nodes);
      refreshAt(r, i + 1);
    } else listEl.append(...nodes);
    // keep the DOM small: drop the oldest when the reader is at the bottom
    if (wasBottom) {
      while (r.win.hi - r.win.lo > WINDOW) { dropFirst(r); }
      listEl.scrollTop = listEl.scrollHeight;
    } else if (i === r.win.hi - 1) $("jump").hidden = false; // below the reader's view, which stays put
    updateOlderButton(r);
  }
  function dropFirst(r) {
    const m = r.list[r.win.lo];
    const node = m && nodeOf(m.id);
    if (node) {
      let p = node.previousElementSibling;
      while (p && p.classList.contains("day")) { const q = p.previousElementSibling; p.remove(); p = q; }
      node.remove();
    }
    r.win.lo++;
    const first = r.list[r.win.lo];
    const fn = first && nodeOf(first.id);
    if (fn && !(fn.previousElementSibling && fn.previousElementSibling.classList.contains("day"))) fn.before(dayNode(first.ts));
  }

  // Older messages above the window: from memory, else a page from the server. The first
  // visible message stays where it was on screen.
  let loadingOlder = false;
  async function showOlder() {
    const r = S.rooms.get(S.current);
    if (!r || !r.win || loadingOlder) return;
    loadingOlder = true;
    try {
      if (r.win.lo === 0 && r.nextBefore !== null) {
        await loadOlder(r.view.id); // store() shifts the window by what it added
      }
      if (r.win.lo === 0 || S.current !== r.view.id) return;
      const from = Math.max(0, r.win.lo - 50);
      // the message at the top of the view is the anchor
      const viewTop = listEl.getBoundingClientRect().top;
      const anchor = [...listEl.querySelectorAll("li.msg")].find((li) => li.getBoundingClientRect().bottom > viewTop + 1);
      const anchorId = anchor && anchor.dataset.id;
      const top = anchor ? anchor.getBoundingClientRect().top : 0;
      const nodes = nodesFor(r, from, r.win.lo);
      // the old first message may now be grouped with the one before it, and its day
      // separator may repeat the last one added
      let first = listEl.firstElementChild;
      if (first && first.classList.contains("day") && nodes.length && dayOf(r.list[r.win.lo].ts) === dayOf(r.list[r.win.lo - 1].ts)) { first.remove(); }
      listEl.prepend(...nodes);
      const oldLo = r.win.lo;
      r.win.lo = from;
      refreshAt(r, oldLo);
      // scrolled far up: keep the DOM to the window by dropping the newest
      while (r.win.hi - r.win.lo > WINDOW) {
        const m = r.list[r.win.hi - 1], n = nodeOf(m.id);
        if (n) { let p = n.previousElementSibling; n.remove(); if (p && p.classList.contains("day") && !p.nextElementSibling) p.remove(); }
        r.win.hi--;
      }
      if (r.win.hi < r.list.length) $("jump").hidden = false;
      updateOlderButton(r);
      // last, after every change of layout (the button above may have gone): back in place
      const moved = anchorId && nodeOf(anchorId);
      if (moved) listEl.scrollTop += moved.getBoundingClientRect().top - top;
    } catch (e) { toast(e.message); } finally { loadingOlder = false; }
  }
  $("older").addEventListener("click", showOlder);
  listEl.addEventListener("scroll", () => {
    const r = S.rooms.get(S.current);
    if (!r || !r.win) return;
    if (listEl.scrollTop < 40 && (r.win.lo > 0 || r.nextBefore !== null)) showOlder();
    if (atBottom()) {
      if (r.win.hi < r.list.length) renderWindow(r, r.list.length);
      $("jump").hidden = true;
      markRead(r.view.id);
    }
  });
  $("jump").addEventListener("click", () => {
    const r = S.rooms.get(S.current);
    if (r) { renderWindow(r, r.list.length); markRead(r.view.id); }
  });

  // Keyboard: arrows move between messages in the list; Home/End to the ends.
  listEl.addEventListener("keydown", (ev) => {
    if (ev.target.closest("textarea, input, button")) return;
    const items = [...listEl.querySelectorAll("li.msg")];
    if (!items.length) return;
    const cur = ev.target.closest("li.msg");
    let i = cur ? items.indexOf(cur) : -1;
    if (ev.key === "ArrowDown") i = Math.min(items.length - 1, i + 1);
    else if (ev.key === "ArrowUp") { if (i === 0) showOlder(); i = i < 0 ? items.length - 1 : Math.max(0, i - 1); }
    else if (ev.key === "Home") i = 0;
    else if (ev.key === "End") i = items.length - 1;
    else return;
    ev.preventDefault();
    items[i].focus();
  });

  function lastOffset(r) {
    for (let i = r.list.length - 1; i >= 0; i--) if (typeof r.list[i].offset === "number") return r.list[i].offset;
    return -1;
  }

  function markRead(id) {
    const r = S.rooms.get(id);
    if (!r || document.visibilityState !== "visible" || S.current !== id) return;
    if (r.win && r.win.hi < r.list.length) return; // reading older messages: not read yet
    if (!atBottom() && !$("list-wrap").hidden && listEl.scrollHeight > listEl.clientHeight) return;
    const off = lastOffset(r);
    const had = r.unread;
    r.unread = 0; r.mentions = 0;
    if (off >= 0) { send({ type: "read", room: id, offset: off }); setSeen(id, off); }
    if (had) renderRooms(); else updateTitle();
  }

  // ---- message updates ----------------------------------------------------------------
  // Every change to a message goes through here: a new message (live or caught up), an edit,
  // a delete, and kinds added later (a streamed chunk arrives as an edit of the message).
  function applyMessage(ev) {
    const r = S.rooms.get(ev.room);
    if (!r) return;
    const m = ev.message;
    const { msg, fresh, index } = store(r, m);
    const open = S.current === ev.room;
    if (fresh && ev.type === "message") {
      S.typing.delete(ev.room + "|" + m.author);
      if (open) renderTyping();
      if (m.author !== S.user || m.bot) {
        // (a bot reads no receipts: none for its messages, which may come thousands a second)
        if (!ev.catchup && !m.bot) send({ type: "delivered", room: ev.room, id: m.id });
        const unseen = !(r.readOffset >= m.offset);
        const looking = open && document.visibilityState === "visible" && atBottom();
        if (unseen && !looking) {
          r.unread += 1;
          if (mentionsMe(m)) r.mentions += 1;
          renderRoomsSoon();
        }
        if (unseen && !ev.catchup) notifyMaybe(r, msg, looking);
        if (open && !ev.catchup) announce(msg);
      }
    }
    if (typeof m.offset === "number" && open && document.visibilityState === "visible") setSeen(ev.room, m.offset);
    if (!open) return;
    if (fresh) showStored(r, index);
    else refreshAt(r, r.list.indexOf(msg));
    if (fresh) markRead(ev.room);
  }

  // The screen reader's live region: new messages by others in the open room, one line each.
  function announce(m) {
    const line = el("p", { text: m.author + ": " + (m.text || "").slice(0, 300) });
    $("live").append(line);
    while ($("live").childElementCount > 5) $("live").firstElementChild.remove();
  }

  function startEdit(r, m) {
    const node = nodeOf(m.id);
    if (!node) return;
    const text = node.querySelector(".text");
    const area = el("textarea", { value: m.text, rows: Math.min(8, m.text.split("\n").length + 1), "aria-label": "Edit message" });
    const save = el("button", { type: "submit", text: "Save" });
    const cancel = el("button", { type: "button", class: "secondary", text: "Cancel" });
    const form = el("form", { class: "editor" }, area, el("div", { class: "row" }, save, cancel, el("span", { class: "muted", text: "Enter saves, Esc cancels" })));
    const done = () => { S.editing = null; refreshAt(r, r.list.indexOf(m)); };
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const t = area.value;
      if (t.trim() && t !== m.text) send({ type: "edit", room: m.room, id: m.id, text: t });
      done();
    });
    cancel.addEventListener("click", done);
    area.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape") { ev.preventDefault(); done(); $("composer-text").focus(); }
      if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); form.requestSubmit(); }
    });
    text.replaceWith(form);
    S.editing = m;
    area.focus();
  }

  function askDelete(r, m) {
    const node = nodeOf(m.id);
    if (!node || node.querySelector(".confirm")) return;
    const yes = el("button", { type: "button", class: "danger", text: "Delete" });
    const no = el("button", { type: "button", class: "secondary", text: "Cancel" });
    const box = el("div", { class: "confirm", role: "group", "aria-label": "Delete this message?" }, el("span", { text: "Delete this message for everyone?" }), el("div", { class: "row" }, yes, no));
    yes.addEventListener("click", () => { send({ type: "delete", room: m.room, id: m.id }); box.remove(); });
    no.addEventListener("click", () => box.remove());
    node.append(box);
    no.focus();
  }

  // ---- composer ----------------------------------------------------------------------
  let clientSeq = 0;
  function submit() {
    const text = $("composer-text").value;
    if (!text.trim() || !S.current) return;
    const client_id = "c" + Date.now() + "-" + Math.random().toString(36).slice(2, 10) + "-" + (clientSeq++);
    const r = S.rooms.get(S.current);
    const reply_to = S.replyTo || undefined;
    const { index } = store(r, { id: client_id, room: S.current, author: S.user, text, ts: Date.now(), pending: true, reply_to });
    S.pending.set(client_id, S.current);
    const frame = { type: "send", room: S.current, text, client_id, reply_to };
    cancelReply();
    S.inflight.set(client_id, frame);
    send(frame); // or after the next hello
    $("composer-text").value = "";
    if (r.win && r.win.hi < r.list.length - 1) renderWindow(r, r.list.length); // writing: back to the newest
    else { listEl.scrollTop = listEl.scrollHeight; showStored(r, index); }
  }
  function cancelReply() { S.replyTo = null; $("reply-to").hidden = true; $("reply-to").replaceChildren(); }
  function startReply(r, m) {
    S.replyTo = m.id;
    const x = el("button", { type: "button", class: "link", text: "cancel", "aria-label": "Cancel the reply" });
    x.addEventListener("click", cancelReply);
    $("reply-to").replaceChildren(el("span", { text: "Replying to " + m.author + ": " + m.text.slice(0, 100) }), x);
    $("reply-to").hidden = false;
    $("composer-text").focus();
  }
  const EMOJI = ["👍", "❤️", "😂", "🎉", "😮", "👀"];
  function pickReaction(r, m, anchor) {
    const node = nodeOf(m.id);
    if (!node) return;
    const old = node.querySelector(".picker");
    if (old) { old.remove(); return; }
    const picker = el("div", { class: "reactions picker", role: "group", "aria-label": "Pick a reaction" }, ...EMOJI.map((e) => {
      const b = el("button", { type: "button", text: e, "aria-label": "React with " + e });
      b.addEventListener("click", () => { send({ type: "react", room: m.room, id: m.id, emoji: e, on: true }); picker.remove(); anchor.focus(); });
      return b;
    }));
    picker.addEventListener("keydown", (ev) => { if (ev.key === "Escape") { picker.remove(); anchor.focus(); } });
    node.append(picker);
    picker.querySelector("button").focus();
  }
  $("composer").addEventListener("submit", (ev) => { ev.preventDefault(); submit(); });
  $("composer-text").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); submit(); }
    if (ev.key === "ArrowUp" && !$("composer-text").value && S.current) {
      // edit my last message
      const r = S.rooms.get(S.current);
      for (let i = r.list.length - 1; i >= 0; i--) {
        const m = r.list[i];
        if (m.author === S.user && !m.bot && !m.deleted && !m.pending) { ev.preventDefault(); startEdit(r, m); break; }
      }
    }
  });
  $("composer-text").addEventListener("input", () => {
    const now = Date.now();
    if (S.current && now - S.lastTyping > 2000) { S.lastTyping = now; send({ type: "typing", room: S.current }); }
  });
  $("menu").addEventListener("click", () => {
    const open = $("sidebar").classList.toggle("open");
    $("menu").setAttribute("aria-expanded", String(open));
  });
  // Alt+Up / Alt+Down: previous / next room; Escape closes the menu or the settings.
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") {
      if (!$("settings").hidden) { $("settings").hidden = true; $("me").focus(); }
      else if ($("sidebar").classList.contains("open")) { $("sidebar").classList.remove("open"); $("menu").setAttribute("aria-expanded", "false"); }
      return;
    }
    if (!ev.altKey || (ev.key !== "ArrowUp" && ev.key !== "ArrowDown") || $("app").hidden) return;
    const ids = [...$("my-rooms").querySelectorAll("button.room")].map((b) => b.dataset.room);
    if (!ids.length) return;
    ev.preventDefault();
    const i = ids.indexOf(S.current);
    const next = ev.key === "ArrowDown" ? (i + 1) % ids.length : (i <= 0 ? ids.length - 1 : i - 1);
    openRoom(ids[next]);
  });

  function renderTyping() {
    const names = [...S.typing.entries()].filter(([k, t]) => k.startsWith(S.current + "|") && Date.now() - t < 4000).map(([k]) => k.split("|")[1]);
    $("typing").textContent = names.length ? names.join(", ") + (names.length > 1 ? " are" : " is") + " typing…" : "";
  }
  setInterval(renderTyping, 1000);

  // ---- notifications -----------------------------------------------------------------
  // Asked once the user has something to be notified about: after their first room is open,
  // from a banner they can dismiss (never on page load, never by surprise).
  function offerNotifications() {
    if (!("Notification" in window) || Notification.permission !== "default" || localStorage.getItem("warren.notify.asked")) return;
    $("notify-ask").hidden = false;
  }
  $("notify-yes").addEventListener("click", async () => {
    localStorage.setItem("warren.notify.asked", "1");
    $("notify-ask").hidden = true;
    try { await Notification.requestPermission(); } catch (_) { /* old browsers */ }
  });
  $("notify-no").addEventListener("click", () => { localStorage.setItem("warren.notify.asked", "1"); $("notify-ask").hidden = true; });

  // A mention of me, or a direct message, that I am not looking at: a desktop notification
  // (when allowed) and the optional sound.
  function notifyMaybe(r, m, looking) {
    if (!(mentionsMe(m) || r.view.direct) || (looking && document.hasFocus())) return;
    if ("Notification" in window && Notification.permission === "granted") {
      try {
        const n = new Notification((r.view.direct ? m.author : m.author + " in " + roomLabel(r.view)), { body: (m.text || "").slice(0, 200), tag: m.id });
        n.onclick = () => { window.focus(); openRoom(r.view.id); n.close(); };
      } catch (_) { /* a browser without page notifications */ }
    }
    if (localStorage.getItem("warren.sound") === "1") beep();
  }
  function beep() {
    try {
      const ctx = new AudioContext(), o = ctx.createOscillator(), g = ctx.createGain();
      o.frequency.value = 880; g.gain.value = 0.08; o.connect(g); g.connect(ctx.destination);
      o.start(); o.stop(ctx.currentTime + 0.15); o.onended = () => ctx.close();
    } catch (_) { /* no audio */ }
  }

  // ---- settings ----------------------------------------------------------------------
  $("me").addEventListener("click", () => { $("settings").hidden = false; $("sound").checked = localStorage.getItem("warren.sound") === "1"; $("settings-close").focus(); });
  $("settings-close").addEventListener("click", () => { $("settings").hidden = true; });
  $("settings").addEventListener("click", (ev) => { if (ev.target === $("settings")) $("settings").hidden = true; });
  $("sound").addEventListener("change", () => localStorage.setItem("warren.sound", $("sound").checked ? "1" : "0"));
  $("me").addEventListener("click", () => { $("admin").hidden = !S.admin; if (S.admin) renderAdmin(); });
  $("password-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await api("POST", "/api/password", { old_password: $("old-password").value, new_password: $("new-password").value });
      $("password-result").textContent = "Password changed.";
      $("old-password").value = ""; $("new-password").value = "";
    } catch (e) { $("password-result").textContent = e.message; }
  });
  // An administrator's accounts: disable (its sessions end at once) or enable again.
  async function renderAdmin(list) {
    try { list = list || await api("GET", "/api/admin/users"); } catch (e) { toast(e.message); return; }
    $("admin-users").replaceChildren(...list.map((u) => {
      const li = el("li", { "data-user": u.username }, el("span", { text: u.username + (u.admin ? " (administrator)" : "") + (u.disabled ? " — disabled" : "") }));
      if (u.username !== S.user) {
        const b = el("button", { type: "button", class: u.disabled ? "secondary" : "danger", text: u.disabled ? "Enable" : "Disable" });
        b.addEventListener("click", async () => {
          try { renderAdmin(await api("POST", "/api/admin/users/" + encodeURIComponent(u.username), { disabled: !u.disabled })); } catch (e) { toast(e.message); }
        });
        li.append(b);
      }
      return li;
    }));
  }

  // ---- transport (WebSocket, or the fallback) ----------------------------------------
  const WS_OPEN_MS = 3000; // a WebSocket not open by then counts as blocked
  function send(obj) {
    if (S.ws && S.ws.readyState === WebSocket.OPEN) { S.ws.send(JSON.stringify(obj)); return true; }
    if (S.es && S.session) { S.outbox.push(obj); postFrames(); return true; }
    return false;
  }

  // The fallback's frames, posted in order, as many as are waiting in one request.
  async function postFrames() {
    if (S.posting) return;
    S.posting = true;
    while (S.outbox.length && S.es && S.session) {
      const es = S.es, frames = S.outbox.splice(0, 64);
      try {
        await api("POST", "/api/events/" + encodeURIComponent(S.session), frames);
      } catch (e) {
        if (e.status === 429) { S.outbox.unshift(...frames); await new Promise((r) => setTimeout(r, 1000)); continue; }
        // the stream ended under us: reconnect (unsent messages are sent again after hello)
        if (S.es === es) dropEvents(es);
        break;
      }
    }
    S.posting = false;
  }
  function subscribe(id) {
    const r = S.rooms.get(id);
    if (!r) return;
    const since = seen()[id];
    send(since === undefined ? { type: "subscribe", room: id } : { type: "subscribe", room: id, since });
    r.subscribed = true;
  }

  function setConn(text) { $("conn").textContent = text; }

  // One event from the server, whatever carried it.
  function onEvent(ev) {
    switch (ev.type) {
      case "hello": {
        S.presence = ev.presence || {};
        S.admin = !!ev.admin;
        if (typeof ev.stale_reply_ms === "number") S.staleReplyMs = ev.stale_reply_ms;
        for (const v of ev.rooms) { const r = room(v); r.unread = v.unread || 0; }
        renderRooms();
        for (const v of ev.rooms) subscribe(v.id);
        for (const frame of S.inflight.values()) send(frame);
        refreshPeople();
        if (!S.current) {
          const last = localStorage.getItem(lastRoomKey());
          if (last && S.rooms.has(last) && isMember(S.rooms.get(last))) openRoom(last);
        }
        if (ev.rooms.length) offerNotifications();
        break;
      }
      case "subscribed": {
        const r = S.rooms.get(ev.room);
        if (r) {
          r.readOffset = ev.read_offset;
          if (typeof ev.others_read === "number" && ev.others_read > r.othersRead) { r.othersRead = ev.others_read; refreshStatuses(r); }
          r.unread = S.current === ev.room && document.visibilityState === "visible" ? 0 : ev.unread;
          if (S.current === ev.room) markRead(ev.room);
          renderRooms();
        }
        break;
      }
      case "message": case "edit": case "delete": applyMessage(ev); break;
      case "sent": {
        const roomId = S.pending.get(ev.client_id);
        const r = roomId && S.rooms.get(roomId);
        S.pending.delete(ev.client_id);
        S.inflight.delete(ev.client_id);
        if (!r) break;
        const p = r.byId.get(ev.client_id);
        unstore(r, ev.client_id);
        if (!r.byId.has(ev.id) && p) {
          const { index } = store(r, Object.assign(p, { id: ev.id, offset: ev.offset, pending: false }));
          if (S.current === roomId) showStored(r, index);
        }
        if (S.current === roomId) markRead(roomId);
        break;
      }
      case "receipt": {
        const r = S.rooms.get(ev.room);
        const m = r && r.byId.get(ev.id);
        if (m && m.author === S.user && ev.user !== S.user && !r.delivered.has(ev.id)) {
          r.delivered.add(ev.id);
          if (S.current === ev.room) refreshAt(r, r.list.indexOf(m));
        }
        break;
      }
      case "read": {
        const r = S.rooms.get(ev.room);
        if (r && ev.user !== S.user && ev.offset > r.othersRead) { r.othersRead = ev.offset; refreshStatuses(r); }
        break;
      }
      case "room": onRoomEvent(ev); break;
      case "expired": expire(ev.room, ev.before_ts); break;
      case "user":
        if (!S.users.some((u) => u.username === ev.user)) { S.users.push({ username: ev.user, status: "offline" }); renderPeople(); }
        break;
      case "typing":
        if (ev.user !== S.user) { S.typing.set(ev.room + "|" + ev.user, Date.now()); renderTyping(); }
        break;
      case "presence":
        S.presence[ev.user] = ev.status;
        if (!S.users.some((u) => u.username === ev.user)) refreshPeople(); else renderPeople();
        break;
      case "error":
        if (ev.client_id && S.pending.has(ev.client_id)) {
          const r = S.rooms.get(S.pending.get(ev.client_id));
          const p = r && r.byId.get(ev.client_id);
          if (p) { p.text = p.text + "  ⚠ " + ev.message; refreshAt(r, r.list.indexOf(p)); }
        } else if (ev.status === 403 && ev.room && S.rooms.has(ev.room)) {
          lostRoom(ev.room);
        } else if (ev.error === "unauthorized") logout(false); // signed out elsewhere, or the account was disabled
        else toast(ev.message);
        break;
    }
  }

  function refreshStatuses(r) {
    if (S.current !== r.view.id || !r.win) return;
    for (const node of listEl.querySelectorAll("li.msg.mine .status")) {
      const m = r.byId.get(node.closest("li").dataset.id);
      if (!m) continue;
      const st = statusOf(r, m);
      if (node.dataset.status !== st) { node.dataset.status = st; node.textContent = statusText(st); }
    }
  }

  // A room's membership or settings changed, or a public room appeared.
  function onRoomEvent(ev) {
    const known = S.rooms.get(ev.room);
    if (ev.deleted) {
      if (known) { if (S.current === ev.room) toast("“" + known.view.name + "” was deleted."); lostRoom(ev.room, true); }
      return;
    }
    if (known && ev.members && known.subscribed && isMember(known) && !ev.members.includes(S.user)) {
      known.view.members = ev.members;
      lostRoom(ev.room); // left on another device, or removed
      return;
    }
    api("GET", "/api/rooms/" + encodeURIComponent(ev.room)).then((v) => {
      const r = room(v);
      if (isMember(r) && !r.subscribed) subscribe(v.id);
      if (S.current === v.id) { renderRoomInfo(r); $("room-title").replaceChildren(roomLabelNodes(r.view)); updateTitle(); }
      renderRooms();
    }).catch((e) => { if (e.status === 404 && known) { S.rooms.delete(ev.room); if (S.current === ev.room) closeRoom(); renderRooms(); } });
  }

  function reconnectLater(note) {
    const wait = Math.min(S.backoff, 15000) * (0.75 + Math.random() / 2);
    S.backoff = Math.min(S.backoff * 2, 15000);
    setConn("reconnecting…" + note);
    setTimeout(connect, wait);
  }

  function connect() {
    if (!S.token) return;
    if (S.fallback) { connectEvents(); return; }
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(proto + "//" + location.host + "/ws?token=" + encodeURIComponent(S.token));
    S.ws = ws;
    let opened = false;
    // a WebSocket that never opened on this page within WS_OPEN_MS is blocked on the way (a
    // proxy, a firewall): fall back to the event stream for the life of the page
    const blocked = () => {
      if (S.ws !== ws || S.wsOpened) return false;
      clearTimeout(timer);
      ws.onclose = null; ws.onopen = null; ws.close(); S.ws = null;
      S.fallback = true;
      connectEvents();
      return true;
    };
    const timer = setTimeout(blocked, WS_OPEN_MS);
    ws.onopen = () => { clearTimeout(timer); opened = true; S.wsOpened = true; S.backoff = 500; setConn("connected"); };
    ws.onmessage = (e) => {
      let ev; try { ev = JSON.parse(e.data); } catch (_) { return; }
      onEvent(ev);
    };
    ws.onclose = async () => {
      if (S.ws !== ws) return;
      clearTimeout(timer);
      for (const r of S.rooms.values()) r.subscribed = false;
      if (!S.token) { S.ws = null; return; }
      if (!opened) {
        try { await api("GET", "/api/me"); } catch (e) { if (e.status === 401) { S.ws = null; return; } }
        if (S.ws !== ws) return; // signed out meanwhile
        if (blocked()) return;
      }
      S.ws = null;
      reconnectLater("");
    };
  }

  // The fallback: events from /api/events (Server-Sent Events), frames POSTed (postFrames).
  function connectEvents() {
    const es = new EventSource("/api/events?token=" + encodeURIComponent(S.token));
    S.es = es; S.session = null; S.outbox = [];
    es.onmessage = (e) => {
      let ev; try { ev = JSON.parse(e.data); } catch (_) { return; }
      if (ev.type === "session") {
        S.session = ev.id; S.backoff = 500;
        setConn("connected · fallback");
        $("conn").title = "WebSocket is blocked on the way to the chat: using Server-Sent Events instead";
        return;
      }
      onEvent(ev);
    };
    es.onerror = () => dropEvents(es);
  }

  async function dropEvents(es) {
    if (S.es !== es) return;
    es.close(); S.es = null; S.session = null;
    for (const r of S.rooms.values()) r.subscribed = false;
    if (!S.token) return;
    try { await api("GET", "/api/me"); } catch (e) { if (e.status === 401) return; }
    reconnectLater(" · fallback");
  }

  document.addEventListener("visibilitychange", () => {
    send({ type: "presence", status: document.visibilityState === "visible" ? "online" : "away" });
    if (document.visibilityState === "visible" && S.current) markRead(S.current);
  });

  // ---- start -------------------------------------------------------------------------
  // An invitation link (#join=room:code), also when opened in a tab where the chat runs.
  function takeInvite() {
    const m = location.hash.match(/^#join=([^:]+):(.+)$/);
    if (!m || !S.token) return;
    history.replaceState(null, "", "/");
    joinRoom(decodeURIComponent(m[1]), decodeURIComponent(m[2]));
  }
  window.addEventListener("hashchange", takeInvite);

  // The sign-in form: who may sign up; an invitation link fills in its code.
  async function prepareAuth() {
    const m = location.hash.match(/^#join=([^:]+):(.+)$/);
    if (m) $("invite-code").value = decodeURIComponent(m[2]);
    try {
      const c = await api("GET", "/api/config");
      $("register").hidden = c.signup === "closed";
      $("invite-code").hidden = $("invite-code-label").hidden = c.signup !== "invite";
      $("auth-error").textContent = c.signup === "closed" ? "" : "";
      $("username-help").textContent = "2–32 of a–z, 0–9 and “-”, starting with a letter." +
        (c.signup === "closed" ? " Sign-up is closed." : c.signup === "invite" ? " Signing up needs an invitation link." : "");
    } catch (_) { /* the form works without it */ }
  }

  async function start() {
    $("auth").hidden = true; $("app").hidden = false;
    $("me").textContent = S.user;
    $("empty-name").textContent = ", " + S.user;
    showRoomChrome(false);
    window.chatFiles.init({ token: () => S.token, room: () => S.current,
      writable: () => !!S.current && !$("composer-text").disabled });
    try { await refreshRooms(); } catch (_) { return; }
    connect();
    takeInvite();
  }

  if (S.token) start(); else prepareAuth();
})();
