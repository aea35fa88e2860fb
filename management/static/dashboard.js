// warren's management dashboard: a client of the /api on the same port. Plain DOM (every
// text from the API goes in with textContent), hand-drawn SVG charts, no dependencies.
"use strict";

const POLL_MS = 5000;
const WINDOW_MS = 10 * 60 * 1000; // the charts' span: samples older than this are dropped
const AUTH_KEY = "warren.dashboard.auth";
const SVG = "http://www.w3.org/2000/svg";

const $ = (id) => document.getElementById(id);
const state = {
  timer: null,
  polling: false,
  history: [], // {t, publish, deliver_get, ack, ready, unacked}
  data: { queues: [], exchanges: [], connections: [], channels: [] },
  sort: {},
  getTarget: null,
  publishTarget: null,
};

// ---- DOM helpers -------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("data-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  return node;
}

function showError(text) {
  $("error-text").textContent = text;
  $("error").hidden = false;
}

let noticeTimer = null;
function notice(text) {
  $("notice").textContent = text;
  $("notice").hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { $("notice").hidden = true; }, 4000);
}

// ---- the API -----------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, reason) { super(reason); this.status = status; }
}

function basic(user, pass) {
  const bytes = new TextEncoder().encode(user + ":" + pass);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return "Basic " + btoa(bin);
}

async function api(method, path, body) {
  const auth = sessionStorage.getItem(AUTH_KEY);
  if (!auth) throw new ApiError(401, "");
  const headers = { "Authorization": auth, "X-Requested-With": "XMLHttpRequest" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let resp;
  try {
    resp = await fetch("/api" + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, "cannot reach the broker: " + e.message);
  }
  const text = await resp.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = null; }
  if (!resp.ok) {
    const reason = (json && (json.reason || json.error)) || resp.statusText || "HTTP " + resp.status;
    throw new ApiError(resp.status, String(reason));
  }
  return json;
}

const enc = encodeURIComponent; // "/" -> "%2F", as the API wants vhosts and names

// Run an API call from a user action: errors go to the page (a 401 back to the login form).
async function act(fn) {
  try {
    const result = await fn();
    $("error").hidden = true;
    return result;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) { logout(e.message || "Login failed"); return undefined; }
    showError(e.message);
    return undefined;
  }
}

// ---- login -------------------------------------------------------------------------------

function showLogin(error) {
  $("app").hidden = true;
  $("nav").hidden = true;
  $("menu").hidden = true;
  $("login").hidden = false;
  $("login-error").hidden = !error;
  $("login-error").textContent = error || "";
  $("login-user").focus();
}

function logout(error) {
  sessionStorage.removeItem(AUTH_KEY);
  clearInterval(state.timer);
  state.timer = null;
  showLogin(error);
}

async function login(ev) {
  ev.preventDefault();
  sessionStorage.setItem(AUTH_KEY, basic($("login-user").value, $("login-pass").value));
  try {
    await start();
  } catch (e) {
    logout(e.message || "Login failed");
  }
}

async function start() {
  const me = await api("GET", "/whoami");
  $("whoami").textContent = me.name;
  $("login").hidden = true;
  $("login-pass").value = "";
  $("error").hidden = true;
  $("app").hidden = false;
  $("nav").hidden = false;
  $("menu").hidden = false;
  showTab();
  await poll();
  clearInterval(state.timer);
  state.timer = setInterval(tick, POLL_MS);
}

// ---- polling -----------------------------------------------------------------------------

async function poll() {
  state.polling = true;
  try {
    const [overview, queues, exchanges, connections, channels] = await Promise.all([
      api("GET", "/overview"), api("GET", "/queues"), api("GET", "/exchanges"),
      api("GET", "/connections"), api("GET", "/channels"),
    ]);
    Object.assign(state.data, { queues, exchanges, connections, channels });
    renderOverview(overview);
    for (const name of Object.keys(TABLES)) renderTable(name);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) logout(e.message || "Login failed");
    else showError(e.message);
  } finally {
    state.polling = false;
  }
}

// the timer's poll, skipped while one is still running (a slow broker)
function tick() {
  if (!state.polling) poll();
}

// an immediate refresh of the lists after an action
async function refresh() { await poll(); }

// ---- overview and charts -----------------------------------------------------------------

const rate = (stats, name) => (stats && stats[name + "_details"] && stats[name + "_details"].rate) || 0;
const fmtRate = (r) => (r >= 100 ? r.toFixed(0) : r.toFixed(1)) + "/s";
const fmtInt = (n) => (n === undefined || n === null ? "" : Number(n).toLocaleString("en"));

function fillDl(dl, pairs) {
  dl.replaceChildren(...pairs.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}

function renderOverview(o) {
  $("node").textContent = o.node ? "· " + o.node : "";
  const ot = o.object_totals || {};
  fillDl($("object-totals"), [["Connections", fmtInt(ot.connections)], ["Channels", fmtInt(ot.channels)],
    ["Exchanges", fmtInt(ot.exchanges)], ["Queues", fmtInt(ot.queues)], ["Consumers", fmtInt(ot.consumers)]]);
  const qt = o.queue_totals || {};
  fillDl($("queue-totals"), [["Ready", fmtInt(qt.messages_ready || 0)], ["Unacked", fmtInt(qt.messages_unacknowledged || 0)],
    ["Total", fmtInt(qt.messages || 0)]]);
  const ms = o.message_stats || {};
  const sample = {
    t: Date.now(), publish: rate(ms, "publish"), deliver_get: rate(ms, "deliver_get"), ack: rate(ms, "ack"),
    ready: qt.messages_ready || 0, unacked: qt.messages_unacknowledged || 0,
  };
  fillDl($("rate-totals"), [["Publish", fmtRate(sample.publish)], ["Deliver / get", fmtRate(sample.deliver_get)],
    ["Ack", fmtRate(sample.ack)]]);
  state.history.push(sample);
  while (state.history.length && state.history[0].t < sample.t - WINDOW_MS) state.history.shift();
  drawChart($("chart-rates"), state.history, [["publish", "Publish"], ["deliver_get", "Deliver / get"], ["ack", "Ack"]], fmtRate);
  drawChart($("chart-queued"), state.history, [["ready", "Ready"], ["unacked", "Unacked"]], fmtInt);
}

// A "nice" upper bound for the y axis: 1, 2 or 5 times a power of ten.
function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function drawChart(box, samples, series, fmt) {
  const W = 600, H = 200, L = 48, R = 8, T = 10, B = 22;
  const now = samples.length ? samples[samples.length - 1].t : Date.now();
  const span = WINDOW_MS;
  const max = niceMax(Math.max(0, ...samples.flatMap((s) => series.map(([k]) => s[k]))));
  const x = (t) => L + (W - L - R) * (1 - (now - t) / span);
  const y = (v) => T + (H - T - B) * (1 - v / max);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "plot" });
  const title = svg("title");
  title.textContent = series.map(([k, label]) => `${label} ${samples.length ? fmt(samples[samples.length - 1][k]) : "-"}`).join(", ");
  root.append(title);
  for (const f of [0, 0.5, 1]) {
    const v = max * f;
    root.append(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }));
    const label = svg("text", { x: L - 6, y: y(v) + 4, class: "axis", "text-anchor": "end" });
    label.textContent = fmt(v);
    root.append(label);
  }
  for (const [m, anchor] of [[10, "start"], [5, "middle"], [0, "end"]]) {
    const label = svg("text", { x: x(now - m * 60000), y: H - 6, class: "axis", "text-anchor": anchor });
    label.textContent = m ? `-${m} min` : "now";
    root.append(label);
  }
  series.forEach(([key], i) => {
    if (!samples.length) return;
    const points = samples.map((s) => `${x(s.t).toFixed(1)},${y(s[key]).toFixed(1)}`).join(" ");
    root.append(svg("polyline", { points, class: `line s${i}` }));
  });
  const legend = el("ul", { class: "legend" }, ...series.map(([key, label], i) =>
    el("li", {}, el("span", { class: `swatch s${i}` }), `${label}: ${samples.length ? fmt(samples[samples.length - 1][key]) : "-"}`)));
  box.replaceChildren(root, legend);
}

// ---- tables ------------------------------------------------------------------------------

const stat = (name) => (row) => rate(row.message_stats, name);
const TABLES = {
  queues: {
    columns: [
      ["Name", (r) => r.name], ["Virtual host", (r) => r.vhost], ["Type", (r) => r.type],
      ["Ready", (r) => r.messages_ready || 0, fmtInt], ["Unacked", (r) => r.messages_unacknowledged || 0, fmtInt],
      ["Consumers", (r) => r.consumers || 0, fmtInt],
      ["Publish", stat("publish"), fmtRate], ["Deliver / get", stat("deliver_get"), fmtRate], ["Ack", stat("ack"), fmtRate],
    ],
    actions: (r) => [
      button("Get", () => openGet(r)),
      button("Purge", () => purgeQueue(r)),
      button("Delete", () => confirmThen(`Delete the queue "${r.name}" (vhost ${r.vhost}) and its messages?`, () => deleteQueue(r)), "danger"),
    ],
  },
  exchanges: {
    columns: [
      ["Name", (r) => r.name === "" ? "(AMQP default)" : r.name], ["Virtual host", (r) => r.vhost], ["Type", (r) => r.type],
      ["Durable", (r) => (r.durable ? "yes" : "no")],
      ["In", stat("publish_in"), fmtRate], ["Out", stat("publish_out"), fmtRate],
    ],
    actions: (r) => [
      button("Publish", () => openPublish(r)),
      ...(r.name === "" || r.name.startsWith("amq.") ? [] : [button("Delete",
        () => confirmThen(`Delete the exchange "${r.name}" (vhost ${r.vhost})?`, () => deleteExchange(r)), "danger")]),
    ],
  },
  connections: {
    columns: [
      ["Name", (r) => r.name], ["User", (r) => r.user], ["Virtual host", (r) => r.vhost],
      ["Client", (r) => (r.client_properties && r.client_properties.product) || ""],
      ["Channels", (r) => r.channels || 0, fmtInt], ["TLS", (r) => (r.ssl ? "yes" : "no")],
    ],
    actions: (r) => [button("Close", () => confirmThen(`Close the connection ${r.name}?`, () => closeConnection(r)), "danger")],
  },
  channels: {
    columns: [
      ["Name", (r) => r.name], ["User", (r) => r.user], ["Virtual host", (r) => r.vhost],
      ["Consumers", (r) => r.consumer_count || 0, fmtInt], ["Unacked", (r) => r.messages_unacknowledged || 0, fmtInt],
      ["Prefetch", (r) => r.prefetch_count || 0, fmtInt], ["Confirm", (r) => (r.confirm ? "yes" : "no")],
    ],
  },
};

function button(label, onClick, cls) {
  const b = el("button", { type: "button", class: cls || "" }, label);
  b.addEventListener("click", onClick);
  return b;
}

function renderTable(name) {
  const spec = TABLES[name];
  const sort = state.sort[name] || { col: 0, dir: 1 };
  const filter = $("filter-" + name).value.trim().toLowerCase();
  const rows = state.data[name]
    .filter((r) => !filter || String(r.name).toLowerCase().includes(filter))
    .map((r) => ({ r, vals: spec.columns.map(([, get]) => get(r)) }));
  rows.sort((a, b) => {
    const x = a.vals[sort.col], y = b.vals[sort.col];
    const c = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
    return c * sort.dir;
  });
  const head = el("tr", {}, ...spec.columns.map(([label, , fmt], i) => {
    const th = el("th", { scope: "col", class: fmt ? "num" : "" });
    const b = el("button", { type: "button", class: "sort" }, label + (i === sort.col ? (sort.dir > 0 ? " ▲" : " ▼") : ""));
    b.addEventListener("click", () => {
      state.sort[name] = { col: i, dir: i === sort.col ? -sort.dir : 1 };
      renderTable(name);
    });
    th.setAttribute("aria-sort", i === sort.col ? (sort.dir > 0 ? "ascending" : "descending") : "none");
    th.append(b);
    return th;
  }), ...(spec.actions ? [el("th", { scope: "col" }, "Actions")] : []));
  const body = rows.map(({ r, vals }) => el("tr", { "data-name": String(r.name), "data-vhost": String(r.vhost || "") },
    ...vals.map((v, i) => {
      const fmt = spec.columns[i][2];
      return el("td", { class: fmt ? "num" : "", "data-col": spec.columns[i][0] }, fmt ? fmt(v) : String(v));
    }),
    ...(spec.actions ? [el("td", { class: "actions" }, ...spec.actions(r))] : [])));
  if (!body.length) {
    body.push(el("tr", {}, el("td", { colSpan: spec.columns.length + (spec.actions ? 1 : 0), class: "muted" },
      filter ? "Nothing matches the filter." : "None.")));
  }
  $("table-" + name).replaceChildren(el("thead", {}, head), el("tbody", {}, ...body));
}

// ---- actions -----------------------------------------------------------------------------

const queuePath = (r) => `/queues/${enc(r.vhost)}/${enc(r.name)}`;
const exchangePath = (r) => `/exchanges/${enc(r.vhost)}/${enc(r.name === "" ? "amq.default" : r.name)}`;

let confirmAction = null;
function confirmThen(text, action) {
  $("confirm-text").textContent = text;
  confirmAction = action;
  $("confirm").returnValue = "";
  $("confirm").showModal();
}

async function purgeQueue(r) {
  if (await act(() => api("DELETE", queuePath(r) + "/contents")) !== undefined) notice(`Queue "${r.name}" purged.`);
  await refresh();
}

async function deleteQueue(r) {
  if (await act(() => api("DELETE", queuePath(r))) !== undefined) notice(`Queue "${r.name}" deleted.`);
  if (state.getTarget && state.getTarget.name === r.name && state.getTarget.vhost === r.vhost) $("get-panel").hidden = true;
  await refresh();
}

async function deleteExchange(r) {
  if (await act(() => api("DELETE", exchangePath(r))) !== undefined) notice(`Exchange "${r.name}" deleted.`);
  await refresh();
}

async function closeConnection(r) {
  if (await act(() => api("DELETE", `/connections/${enc(r.name)}`)) !== undefined) notice(`Connection ${r.name} closed.`);
  await refresh();
}

function openGet(r) {
  state.getTarget = { vhost: r.vhost, name: r.name };
  $("get-queue").textContent = `"${r.name}" (vhost ${r.vhost})`;
  $("get-result").replaceChildren();
  $("get-panel").hidden = false;
  $("get-panel").scrollIntoView({ block: "nearest" });
}

async function getMessages(ev) {
  ev.preventDefault();
  const t = state.getTarget;
  if (!t) return;
  const count = Math.max(1, Math.min(100, Number($("get-count").value) || 1));
  const msgs = await act(() => api("POST", queuePath(t) + "/get", { count, ackmode: "ack_requeue_true", encoding: "auto" }));
  if (msgs === undefined) return;
  const items = msgs.map((m) => el("li", {},
    el("div", { class: "meta" }, `exchange "${m.exchange}", routing key "${m.routing_key}"` +
      `${m.redelivered ? ", redelivered" : ""}, ${fmtInt(m.payload_bytes)} bytes (${m.payload_encoding})`),
    el("pre", { class: "payload" }, m.payload)));
  $("get-result").replaceChildren(...(items.length ? items : [el("li", { class: "muted" }, "The queue is empty.")]));
  await refresh();
}

function openPublish(r) {
  state.publishTarget = { vhost: r.vhost, name: r.name };
  $("publish-exchange").textContent = `${r.name === "" ? "(AMQP default)" : `"${r.name}"`} (vhost ${r.vhost})`;
  $("publish-panel").hidden = false;
  $("publish-panel").scrollIntoView({ block: "nearest" });
  $("publish-key").focus();
}

async function publish(ev) {
  ev.preventDefault();
  const t = state.publishTarget;
  if (!t) return;
  const body = { routing_key: $("publish-key").value, payload: $("publish-payload").value, payload_encoding: "string", properties: {} };
  const res = await act(() => api("POST", exchangePath(t) + "/publish", body));
  if (res !== undefined) notice(res.routed ? "Message published." : "Message published, but no queue was bound to receive it.");
  await refresh();
}

// ---- navigation --------------------------------------------------------------------------

function showTab() {
  const tab = (location.hash || "#overview").slice(1);
  const known = [...document.querySelectorAll("[data-section]")].map((s) => s.dataset.section);
  const current = known.includes(tab) ? tab : "overview";
  for (const s of document.querySelectorAll("[data-section]")) s.hidden = s.dataset.section !== current;
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.dataset.tab === current) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.body.classList.remove("nav-open");
  $("menu").setAttribute("aria-expanded", "false");
}

document.addEventListener("DOMContentLoaded", () => {
  $("login").addEventListener("submit", login);
  $("logout").addEventListener("click", () => logout(""));
  $("error-close").addEventListener("click", () => { $("error").hidden = true; });
  $("menu").addEventListener("click", () => {
    const open = document.body.classList.toggle("nav-open");
    $("menu").setAttribute("aria-expanded", String(open));
  });
  window.addEventListener("hashchange", showTab);
  for (const name of Object.keys(TABLES)) $("filter-" + name).addEventListener("input", () => renderTable(name));
  $("get-form").addEventListener("submit", getMessages);
  $("get-close").addEventListener("click", () => { $("get-panel").hidden = true; });
  $("publish-form").addEventListener("submit", publish);
  $("publish-close").addEventListener("click", () => { $("publish-panel").hidden = true; });
  $("confirm").addEventListener("close", () => {
    const action = confirmAction;
    confirmAction = null;
    if ($("confirm").returnValue === "yes" && action) action();
  });
  if (sessionStorage.getItem(AUTH_KEY)) start().catch((e) => logout(e.message || "Login failed"));
  else showLogin("");
});
