// warren chat UI: REST for accounts/rooms/history, one WebSocket for everything live.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const S = {
    token: localStorage.getItem("warren.token"),
    user: localStorage.getItem("warren.user"),
    rooms: new Map(), // id -> {view, messages: Map(id -> msg), unread, loaded, nextBefore, subscribed}
    current: null,
    presence: {},
    ws: null,
    backoff: 500,
    typing: new Map(),
    pending: new Map(),
    unsent: [], // messages written while the socket was down: sent after the next hello
    // every send not yet "sent", by client_id: sent again after a reconnect (the front end or
    // broker node may have gone away before confirming it); the server derives the message id
    // from the client_id, so one that did make it is not posted twice
    inflight: new Map(),
    lastTyping: 0,
  };

  // ---- REST -------------------------------------------------------------------------
  async function api(method, path, body) {
    const headers = { "content-type": "application/json" };
    if (S.token) headers.authorization = "Bearer " + S.token;
    const resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    let data = null;
    try { data = await resp.json(); } catch (_) { /* 204 */ }
    if (resp.status === 401 && path !== "/api/login" && path !== "/api/register") logout(false);
    if (!resp.ok) throw Object.assign(new Error((data && data.message) || resp.statusText), { status: resp.status });
    return data;
  }

  // ---- seen offsets, kept per user so another tab/device catches up on reconnect ------
  const seenKey = () => "warren.seen." + S.user;
  function seen() { try { return JSON.parse(localStorage.getItem(seenKey()) || "{}"); } catch (_) { return {}; } }
  function setSeen(room, offset) {
    const s = seen();
    if (s[room] === undefined || offset > s[room]) { s[room] = offset; localStorage.setItem(seenKey(), JSON.stringify(s)); }
  }

  // ---- auth -------------------------------------------------------------------------
  $("auth-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const action = ev.submitter && ev.submitter.dataset.action === "register" ? "register" : "login";
    $("auth-error").textContent = "";
    try {
      const r = await api("POST", "/api/" + action, { username: $("username").value.trim(), password: $("password").value });
      S.token = r.token; S.user = r.username;
      localStorage.setItem("warren.token", r.token); localStorage.setItem("warren.user", r.username);
      start();
    } catch (e) {
      $("auth-error").textContent = e.message;
    }
  });

  function logout(tellServer) {
    if (tellServer && S.token) api("POST", "/api/logout").catch(() => {});
    S.token = null; localStorage.removeItem("warren.token");
    if (S.ws) { S.ws.onclose = null; S.ws.close(); S.ws = null; }
    $("app").hidden = true; $("auth").hidden = false;
  }
  $("logout").addEventListener("click", () => logout(true));

  // ---- rooms ------------------------------------------------------------------------
  function room(view) {
    let r = S.rooms.get(view.id);
    if (!r) { r = { view, messages: new Map(), unread: 0, loaded: false, nextBefore: null, subscribed: false }; S.rooms.set(view.id, r); }
    else r.view = Object.assign(r.view, view);
    return r;
  }
  const isMember = (r) => r.view.members && r.view.members.includes(S.user);
  function roomLabel(v) {
    if (v.direct) return "@ " + v.members.filter((m) => m !== S.user).join(", ");
    return (v.public ? "# " : "🔒 ") + v.name;
  }

  function renderRooms() {
    const mine = $("my-rooms"), pub = $("public-rooms");
    mine.replaceChildren(); pub.replaceChildren();
    const all = [...S.rooms.values()].sort((a, b) => roomLabel(a.view).localeCompare(roomLabel(b.view)));
    for (const r of all) {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.className = "room"; b.textContent = roomLabel(r.view); b.dataset.room = r.view.id;
      if (isMember(r)) {
        b.addEventListener("click", () => openRoom(r.view.id));
        if (S.current === r.view.id) b.setAttribute("aria-current", "true");
        li.appendChild(b);
        if (r.unread > 0) {
          const badge = document.createElement("span");
          badge.className = "badge"; badge.dataset.unread = r.view.id; badge.textContent = String(r.unread);
          badge.setAttribute("aria-label", r.unread + " unread");
          li.appendChild(badge);
        }
        mine.appendChild(li);
      } else if (r.view.public) {
        b.addEventListener("click", () => joinRoom(r.view.id));
        b.title = "Join " + r.view.name;
        const j = document.createElement("span"); j.className = "muted"; j.textContent = "join";
        li.append(b, j); pub.appendChild(li);
      }
    }
  }

  function renderPeople(users) {
    const ul = $("people");
    ul.replaceChildren();
    for (const u of users) {
      if (u.username === S.user) continue;
      const li = document.createElement("li");
      const status = S.presence[u.username] || "offline";
      const dot = document.createElement("span");
      dot.className = "dot " + status; dot.setAttribute("role", "img"); dot.setAttribute("aria-label", status);
      const b = document.createElement("button");
      b.className = "room"; b.textContent = u.username; b.dataset.user = u.username; b.dataset.status = status;
      b.title = "Chat with " + u.username + " (" + status + ")";
      b.addEventListener("click", () => directChat(u.username));
      li.append(dot, b); ul.appendChild(li);
    }
  }
  let users = [];
  async function refreshPeople() {
    try { users = await api("GET", "/api/users"); renderPeople(users); } catch (_) {}
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
    } catch (e) { alert(e.message); }
  }

  async function directChat(name) {
    try {
      const v = await api("POST", "/api/dm/" + encodeURIComponent(name));
      room(v); subscribe(v.id); renderRooms(); openRoom(v.id);
    } catch (e) { alert(e.message); }
  }

  $("new-room").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const v = await api("POST", "/api/rooms", {
        name: $("new-room-name").value, public: !$("new-room-private").checked,
        retention_days: Number($("new-room-days").value || 30),
      });
      $("new-room-name").value = "";
      room(v); subscribe(v.id); renderRooms(); openRoom(v.id);
    } catch (e) { alert(e.message); }
  });

  function renderRoomInfo(r) {
    const info = $("room-info");
    const n = r.view.members.length;
    info.replaceChildren(document.createTextNode(n + (n === 1 ? " member" : " members") + " · messages kept " +
      (r.view.retention_days ? r.view.retention_days + " days" : "forever")));
    if (r.view.invite) {
      const a = document.createElement("a");
      a.href = location.origin + "/#join=" + r.view.id + ":" + r.view.invite;
      a.textContent = " · invitation link"; a.id = "invite-link";
      info.appendChild(a);
    }
  }

  async function openRoom(id) {
    const r = S.rooms.get(id);
    if (!r) return;
    S.current = id;
    $("sidebar").classList.remove("open"); $("menu").setAttribute("aria-expanded", "false");
    $("room-title").textContent = roomLabel(r.view);
    renderRoomInfo(r);
    $("composer-text").disabled = false; $("send").disabled = false;
    if (!r.loaded) await loadOlder(id);
    renderMessages();
    markRead(id);
    renderRooms();
  }

  async function loadOlder(id) {
    const r = S.rooms.get(id);
    const q = r.nextBefore !== null && r.loaded ? "&before=" + r.nextBefore : "";
    const page = await api("GET", "/api/rooms/" + encodeURIComponent(id) + "/messages?limit=50" + q);
    for (const m of page.messages) r.messages.set(m.id, Object.assign(r.messages.get(m.id) || {}, m));
    r.nextBefore = page.next_before === undefined ? null : page.next_before;
    r.loaded = true;
  }
  $("older").addEventListener("click", async () => { if (S.current) { await loadOlder(S.current); renderMessages(); } });

  // ---- messages ---------------------------------------------------------------------
  function messageItem(m) {
    const li = document.createElement("li");
    li.dataset.id = m.id; li.dataset.offset = m.offset;
    if (m.author === S.user && !m.bot) li.className = "mine";
    const meta = document.createElement("div"); meta.className = "meta";
    const who = document.createElement("span"); who.className = "author"; who.textContent = m.author; meta.appendChild(who);
    if (m.bot) { const b = document.createElement("span"); b.className = "bot"; b.textContent = "bot"; meta.appendChild(b); }
    const when = document.createElement("time");
    when.dateTime = new Date(m.ts).toISOString(); when.textContent = new Date(m.ts).toLocaleTimeString();
    meta.appendChild(when);
    if (m.edited && !m.deleted) { const e = document.createElement("span"); e.textContent = "(edited)"; meta.appendChild(e); }
    if (li.className === "mine") {
      const st = document.createElement("span"); st.className = "status"; st.dataset.status = m.status || "sent";
      st.textContent = { sending: "sending…", sent: "✓ sent", delivered: "✓✓ delivered", read: "✓✓ read" }[m.status || "sent"];
      meta.appendChild(st);
      if (!m.deleted && !m.pending) {
        const ed = document.createElement("button"); ed.className = "link"; ed.textContent = "edit";
        ed.setAttribute("aria-label", "Edit message");
        ed.addEventListener("click", () => {
          const t = prompt("Edit message", m.text);
          if (t !== null && t.trim()) send({ type: "edit", room: m.room, id: m.id, text: t });
        });
        const del = document.createElement("button"); del.className = "link"; del.textContent = "delete";
        del.setAttribute("aria-label", "Delete message");
        del.addEventListener("click", () => { if (confirm("Delete this message?")) send({ type: "delete", room: m.room, id: m.id }); });
        meta.append(ed, del);
      }
    }
    // issue 19: a bot's reply streamed chunk by chunk grows in place ("writing…"), or was cut short
    if (m.streaming) { li.classList.add("streaming"); const w = document.createElement("span"); w.className = "streaming-mark"; w.textContent = "writing…"; meta.appendChild(w); }
    if (m.interrupted) { li.classList.add("interrupted"); const x = document.createElement("span"); x.className = "interrupted-mark"; x.textContent = "interrupted"; x.title = "The bot stopped before it finished"; meta.appendChild(x); }
    const body = document.createElement("div"); body.className = "text";
    if (m.deleted) { body.className = "text deleted"; body.textContent = "message deleted"; }
    else body.appendChild(window.renderMarkdown(m.text));
    li.append(meta, body);
    return li;
  }

  function sorted(r) { return [...r.messages.values()].sort((a, b) => (a.offset ?? Infinity) - (b.offset ?? Infinity)); }

  function renderMessages() {
    const r = S.rooms.get(S.current);
    const ol = $("messages");
    if (!r) { ol.replaceChildren(); return; }
    const atBottom = ol.scrollHeight - ol.scrollTop - ol.clientHeight < 40;
    ol.replaceChildren(...sorted(r).map(messageItem));
    $("older").hidden = r.nextBefore === null;
    if (atBottom || true) ol.scrollTop = ol.scrollHeight;
  }

  function lastOffset(r) {
    let max = -1;
    for (const m of r.messages.values()) if (typeof m.offset === "number" && m.offset > max) max = m.offset;
    return max;
  }

  function markRead(id) {
    const r = S.rooms.get(id);
    if (!r || document.visibilityState !== "visible") return;
    const off = lastOffset(r);
    r.unread = 0;
    if (off >= 0) { send({ type: "read", room: id, offset: off }); setSeen(id, off); }
    renderRooms();
  }

  function onMessage(ev) {
    const r = S.rooms.get(ev.room);
    if (!r) return;
    const m = ev.message;
    const old = r.messages.get(m.id);
    r.messages.set(m.id, Object.assign(old || {}, m));
    if (ev.type === "message" && m.author !== S.user) {
      send({ type: "delivered", room: ev.room, id: m.id });
      if (S.current === ev.room && document.visibilityState === "visible") markRead(ev.room);
      else if (!old && !(r.readOffset >= m.offset)) { r.unread += 1; renderRooms(); }
    }
    if (typeof m.offset === "number" && (S.current === ev.room && document.visibilityState === "visible")) setSeen(ev.room, m.offset);
    if (S.current === ev.room) renderMessages();
  }

  // ---- composer ---------------------------------------------------------------------
  let clientSeq = 0;
  function submit() {
    const text = $("composer-text").value;
    if (!text.trim() || !S.current) return;
    const client_id = "c" + Date.now() + "-" + Math.random().toString(36).slice(2, 10) + "-" + (clientSeq++);
    const r = S.rooms.get(S.current);
    r.messages.set(client_id, { id: client_id, room: S.current, author: S.user, text, ts: Date.now(), status: "sending", pending: true });
    S.pending.set(client_id, S.current);
    const frame = { type: "send", room: S.current, text, client_id };
    S.inflight.set(client_id, frame);
    if (!send(frame)) S.unsent.push(frame);
    $("composer-text").value = "";
    renderMessages();
  }
  $("composer").addEventListener("submit", (ev) => { ev.preventDefault(); submit(); });
  $("composer-text").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); submit(); }
  });
  $("composer-text").addEventListener("input", () => {
    const now = Date.now();
    if (S.current && now - S.lastTyping > 2000) { S.lastTyping = now; send({ type: "typing", room: S.current }); }
  });
  $("menu").addEventListener("click", () => {
    const open = $("sidebar").classList.toggle("open");
    $("menu").setAttribute("aria-expanded", String(open));
  });

  function renderTyping() {
    const names = [...S.typing.entries()].filter(([k, t]) => k.startsWith(S.current + "|") && Date.now() - t < 4000).map(([k]) => k.split("|")[1]);
    $("typing").textContent = names.length ? names.join(", ") + (names.length > 1 ? " are" : " is") + " typing…" : "";
  }
  setInterval(renderTyping, 1000);

  // ---- WebSocket --------------------------------------------------------------------
  function send(obj) {
    if (!S.ws || S.ws.readyState !== WebSocket.OPEN) return false;
    S.ws.send(JSON.stringify(obj));
    return true;
  }

  function subscribe(id) {
    const r = S.rooms.get(id);
    if (!r) return;
    const since = seen()[id];
    send(since === undefined ? { type: "subscribe", room: id } : { type: "subscribe", room: id, since });
    r.subscribed = true;
  }

  function setConn(text) { $("conn").textContent = text; }

  function connect() {
    if (!S.token) return;
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(proto + "//" + location.host + "/ws?token=" + encodeURIComponent(S.token));
    S.ws = ws;
    let opened = false;
    ws.onopen = () => { opened = true; S.backoff = 500; setConn("connected"); };
    ws.onmessage = (e) => {
      let ev; try { ev = JSON.parse(e.data); } catch (_) { return; }
      switch (ev.type) {
        case "hello":
          S.presence = ev.presence || {};
          for (const v of ev.rooms) { const r = room(v); r.unread = v.unread || 0; }
          renderRooms();
          for (const v of ev.rooms) subscribe(v.id);
          S.unsent.splice(0);
          for (const frame of S.inflight.values()) send(frame);
          refreshPeople();
          break;
        case "subscribed": {
          const r = S.rooms.get(ev.room);
          if (r) {
            r.readOffset = ev.read_offset;
            r.unread = S.current === ev.room && document.visibilityState === "visible" ? 0 : ev.unread;
            if (S.current === ev.room) markRead(ev.room);
            renderRooms();
          }
          break;
        }
        case "message": case "edit": case "delete": onMessage(ev); break;
        case "sent": {
          const roomId = S.pending.get(ev.client_id);
          const r = roomId && S.rooms.get(roomId);
          if (r) {
            const p = r.messages.get(ev.client_id);
            r.messages.delete(ev.client_id);
            const real = r.messages.get(ev.id) || Object.assign(p || {}, { id: ev.id, offset: ev.offset, pending: false });
            if (!real.status || real.status === "sending") real.status = "sent";
            real.pending = false;
            r.messages.set(ev.id, real);
            S.pending.delete(ev.client_id);
            S.inflight.delete(ev.client_id);
            if (S.current === roomId) { renderMessages(); markRead(roomId); }
          }
          break;
        }
        case "receipt": {
          const r = S.rooms.get(ev.room);
          const m = r && r.messages.get(ev.id);
          if (m && m.author === S.user && ev.user !== S.user && m.status !== "read") { m.status = "delivered"; if (S.current === ev.room) renderMessages(); }
          break;
        }
        case "read": {
          const r = S.rooms.get(ev.room);
          if (r && ev.user !== S.user) {
            for (const m of r.messages.values()) if (m.author === S.user && m.offset <= ev.offset) m.status = "read";
            if (S.current === ev.room) renderMessages();
          }
          break;
        }
        case "room": {
          const known = S.rooms.get(ev.room);
          if (!known || !known.subscribed || !isMember(known)) {
            api("GET", "/api/rooms/" + encodeURIComponent(ev.room)).then((v) => { room(v); subscribe(v.id); renderRooms(); }).catch(() => {});
          } else {
            // A member list without us: we left (maybe on another device).
            known.view.members = ev.members;
            if (S.current === ev.room) renderRoomInfo(known);
            renderRooms();
          }
          break;
        }
        case "typing":
          if (ev.user !== S.user) { S.typing.set(ev.room + "|" + ev.user, Date.now()); renderTyping(); }
          break;
        case "presence":
          S.presence[ev.user] = ev.status; renderPeople(users);
          if (!users.some((u) => u.username === ev.user)) refreshPeople();
          break;
        case "error":
          console.warn("chat error", ev);
          if (ev.client_id && S.pending.has(ev.client_id)) {
            const r = S.rooms.get(S.pending.get(ev.client_id));
            const p = r && r.messages.get(ev.client_id);
            if (p) { p.status = "sending"; p.text = p.text + "  ⚠ " + ev.message; renderMessages(); }
          }
          break;
      }
    };
    ws.onclose = async () => {
      S.ws = null;
      for (const r of S.rooms.values()) r.subscribed = false;
      if (!S.token) return;
      if (!opened) {
        try { await api("GET", "/api/me"); } catch (e) { if (e.status === 401) return; }
      }
      const wait = Math.min(S.backoff, 15000) * (0.75 + Math.random() / 2);
      S.backoff = Math.min(S.backoff * 2, 15000);
      setConn("reconnecting…");
      setTimeout(connect, wait);
    };
  }

  document.addEventListener("visibilitychange", () => {
    send({ type: "presence", status: document.visibilityState === "visible" ? "online" : "away" });
    if (document.visibilityState === "visible" && S.current) markRead(S.current);
  });

  async function start() {
    $("auth").hidden = true; $("app").hidden = false;
    $("me").textContent = S.user;
    try { await refreshRooms(); } catch (_) { return; }
    connect();
    const m = location.hash.match(/^#join=([^:]+):(.+)$/);
    if (m) { history.replaceState(null, "", "/"); joinRoom(m[1], m[2]); }
  }

  setInterval(() => { if (S.token && !$("app").hidden) refreshRooms().catch(() => {}); }, 15000);
  if (S.token) start();
})();
