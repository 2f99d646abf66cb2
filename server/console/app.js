// citywatch console: plain JS, no external resources. The token stays in
// sessionStorage and is sent as a bearer header; the live stream is read with
// fetch() (EventSource cannot send headers) and resumes with Last-Event-ID.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { token: null, me: null, alerts: new Map(), selected: null, lastId: null, abort: null, models: new Set() };
const SEV_RANK = { extreme: 0, severe: 1, moderate: 2, minor: 3 };

async function api(path, opts = {}) {
  const headers = Object.assign({ Authorization: "Bearer " + state.token }, opts.headers || {});
  const r = await fetch(path, Object.assign({}, opts, { headers }));
  if (r.status === 401) { logout("Your token was refused."); throw new Error("unauthorized"); }
  const type = r.headers.get("content-type") || "";
  const body = type.includes("json") ? await r.json() : await r.text();
  if (!r.ok) throw new Error((body && body.error) || r.statusText);
  return body;
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function age(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m";
  if (s < 86400) return Math.floor(s / 3600) + "h";
  return Math.floor(s / 86400) + "d";
}

// ---- login ---------------------------------------------------------------

async function login(token) {
  state.token = token;
  try {
    state.me = await api("/api/v1/me");
  } catch (e) {
    $("login-error").textContent = e.message === "unauthorized" ? "Unknown token." : e.message;
    state.token = null;
    return;
  }
  sessionStorage.setItem("citywatch-token", token);
  const o = state.me.officer;
  $("who").textContent = `${o.name} (${o.role}, ${o.scope})`;
  $("login-view").hidden = true;
  $("main-view").hidden = false;
  $("reveal-box").hidden = !state.me.can_reveal;
  await loadAlerts();
  stream();
  drawMap();
  state.mapTimer = setInterval(drawMap, 10000);
}

function logout(msg) {
  sessionStorage.removeItem("citywatch-token");
  if (state.abort) state.abort.abort();
  clearInterval(state.mapTimer);
  state.token = null; state.alerts.clear(); state.selected = null; state.lastId = null;
  $("main-view").hidden = true;
  $("login-view").hidden = false;
  $("login-error").textContent = msg || "";
}

// ---- alerts --------------------------------------------------------------

async function loadAlerts() {
  const r = await api("/api/v1/alerts?limit=1000");
  for (const a of r.alerts) upsert(a, false);
  state.lastId = r.last_seq;
  render();
}

function upsert(a, fresh) {
  state.alerts.set(a.alert_id, Object.assign(a, { _fresh: fresh }));
  if (!state.models.has(a.model)) {
    state.models.add(a.model);
    $("f-model").append(el("option", { text: a.model }));
  }
}

function visible(a) {
  const st = $("f-status").value, sev = $("f-severity").value, model = $("f-model").value;
  const text = $("f-text").value.trim().toLowerCase();
  if (st === "" && a.status === "resolved") return false;
  if (st && st !== "all" && a.status !== st) return false;
  if (sev && a.severity !== sev) return false;
  if (model && a.model !== model) return false;
  if (text && !(a.summary + " " + a.subject + " " + a.kind).toLowerCase().includes(text)) return false;
  return true;
}

function render() {
  const rows = [...state.alerts.values()].filter(visible).sort((x, y) =>
    (x.status === "new" ? 0 : 1) - (y.status === "new" ? 0 : 1) ||
    (SEV_RANK[x.severity] ?? 9) - (SEV_RANK[y.severity] ?? 9) || y.updated_ms - x.updated_ms);
  const body = $("queue-body");
  body.replaceChildren(...rows.map((a) => {
    const tr = el("tr", { id: "alert-" + a.alert_id, "data-status": a.status, class: a.status === "new" && a._fresh ? "fresh" : "" },
      el("td", {}, el("span", { class: "sev sev-" + a.severity, text: a.severity })),
      el("td", { class: "age", "data-ms": String(a.created_ms), text: age(a.created_ms) }),
      el("td", { class: "status status-" + a.status, text: a.status + (a.level !== "community" && a.level !== "city" ? " ↑" + a.level : "") }),
      el("td", { text: a.assignee || "—" }),
      el("td", { class: "summary", text: a.summary }));
    if (a.alert_id === state.selected) tr.classList.add("selected");
    tr.addEventListener("click", () => select(a.alert_id));
    return tr;
  }));
  $("queue-empty").hidden = rows.length > 0;
  if (state.selected) showDetail(state.alerts.get(state.selected));
}

setInterval(() => document.querySelectorAll("td.age").forEach((td) => { td.textContent = age(+td.dataset.ms); }), 1000);

async function select(id) {
  state.selected = id;
  $("d-error").textContent = "";
  $("reveal-out").textContent = "";
  try {
    const a = await api("/api/v1/alerts/" + encodeURIComponent(id)); // audited as a view
    upsert(a, false);
  } catch (e) { $("d-error").textContent = e.message; }
  render();
}

function pseudonyms(a) {
  const found = new Set();
  const text = a.subject + " " + JSON.stringify(a.evidence);
  for (const m of text.matchAll(/\b[0-9a-f]{16}\b/g)) found.add(m[0]);
  return [...found];
}

function showDetail(a) {
  if (!a) { $("detail").hidden = true; return; }
  $("detail").hidden = false;
  $("d-summary").textContent = a.summary;
  const f = [["Alert", a.alert_id], ["Model", `${a.model} ${a.model_version} / ${a.kind}`], ["Severity", a.severity],
    ["Score", String(a.score)], ["Status", a.status], ["Level", a.level], ["Assignee", a.assignee || "—"],
    ["Subject", a.subject], ["Place", [a.grid, a.community, a.street, a.district].filter(Boolean).join(" / ") || "—"],
    ["Event time", new Date(a.event_ts_ms).toISOString()], ["Action", a.action]];
  if (a.acked_by) f.push(["Acknowledged", `${a.acked_by} at ${new Date(a.acked_ms).toISOString()}`]);
  if (a.resolved_by) f.push(["Resolved", `${a.resolved_by}: ${a.note}`]);
  if (a.updates) f.push(["Duplicates", String(a.updates)]);
  $("d-fields").replaceChildren(...f.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));
  $("d-evidence").textContent = JSON.stringify(a.evidence, null, 2);
  $("ack-btn").disabled = a.status !== "new";
  $("resolve-btn").disabled = a.status === "resolved";
  const toks = pseudonyms(a);
  const sel = $("reveal-token");
  if (sel.dataset.for !== a.alert_id) {
    sel.replaceChildren(...toks.map((t) => el("option", { value: t, text: t })));
    sel.dataset.for = a.alert_id;
  }
  $("reveal-btn").disabled = toks.length === 0;
}

async function act(path, body) {
  $("d-error").textContent = "";
  try {
    const a = await api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}) });
    upsert(a, false);
    render();
  } catch (e) { $("d-error").textContent = e.message; }
}

$("ack-btn").addEventListener("click", () => act(`/api/v1/alerts/${encodeURIComponent(state.selected)}/ack`));
$("resolve-btn").addEventListener("click", () => {
  const note = $("resolve-note").value.trim();
  if (!note) { $("d-error").textContent = "A resolution note is required."; return; }
  act(`/api/v1/alerts/${encodeURIComponent(state.selected)}/resolve`, { note }).then(() => { $("resolve-note").value = ""; });
});
$("reveal-btn").addEventListener("click", async () => {
  const reason = $("reveal-reason").value.trim();
  if (!reason) { $("d-error").textContent = "A reason is required to reveal a number."; return; }
  try {
    const r = await api("/api/v1/reveal", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token: $("reveal-token").value, alert_id: state.selected, reason }) });
    $("reveal-out").textContent = r.number;
  } catch (e) { $("d-error").textContent = e.message; }
});
$("cap-link").addEventListener("click", async (ev) => {
  ev.preventDefault();
  try {
    const xml = await api(`/api/v1/alerts/${encodeURIComponent(state.selected)}/cap`);
    const url = URL.createObjectURL(new Blob([xml], { type: "application/xml" }));
    window.open(url, "_blank");
  } catch (e) { $("d-error").textContent = e.message; }
});
for (const id of ["f-status", "f-severity", "f-model", "f-text"]) $(id).addEventListener("input", render);

// ---- live stream ---------------------------------------------------------

async function stream() {
  while (state.token) {
    const ctrl = new AbortController();
    state.abort = ctrl;
    try {
      const headers = { Authorization: "Bearer " + state.token, Accept: "text/event-stream" };
      if (state.lastId !== null) headers["Last-Event-ID"] = String(state.lastId);
      const r = await fetch("/api/v1/stream", { headers, signal: ctrl.signal });
      if (r.status === 401) { logout("Your token was refused."); return; }
      if (!r.ok) throw new Error(r.statusText);
      $("conn").textContent = "live"; $("conn").classList.add("live");
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true }).replace(/\r\n/g, "\n");
        let end;
        while ((end = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          let id = null, data = "";
          for (const line of block.split("\n")) {
            if (line.startsWith("id:")) id = line.slice(3).trim();
            else if (line.startsWith("data:")) data += line.slice(5).replace(/^ /, "");
          }
          if (data) {
            const ev = JSON.parse(data);
            upsert(ev.alert, ev.change === "new" || ev.change === "escalated");
            render();
            if (state.alerts.size && state.selected === null && ev.change === "new") { /* keep the user's selection */ }
          }
          if (id !== null) state.lastId = Number(id);
        }
      }
    } catch (e) {
      if (!state.token) return;
    }
    $("conn").textContent = "reconnecting"; $("conn").classList.remove("live");
    await new Promise((res) => setTimeout(res, 1000));
  }
}

// ---- map -----------------------------------------------------------------

async function drawMap() {
  if (!state.token) return;
  let grid, risk, units;
  try {
    [grid, risk, units] = await Promise.all([api("/api/v1/grid"), api("/api/v1/risk"), api("/api/v1/units")]);
  } catch (e) { return; }
  const svg = $("map");
  const pts = [];
  const rings = (fc) => fc.features.map((f) => f.geometry.coordinates[0]);
  for (const r of rings(grid).concat(rings(risk))) pts.push(...r);
  for (const u of units.units) pts.push([u.lon, u.lat]);
  for (const a of state.alerts.values()) if (a.lon != null && a.status !== "resolved") pts.push([a.lon, a.lat]);
  if (!pts.length) { svg.replaceChildren(el("text", { x: "20", y: "30", text: "Nothing to draw yet." })); return; }
  let [x0, y0, x1, y1] = [Infinity, Infinity, -Infinity, -Infinity];
  for (const [x, y] of pts) { x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); }
  const k = Math.cos(((y0 + y1) / 2) * Math.PI / 180);
  const w = Math.max((x1 - x0) * k, 1e-4), h = Math.max(y1 - y0, 1e-4);
  const s = Math.min(560 / w, 380 / h);
  const P = ([x, y]) => [20 + (x - x0) * k * s, 400 - (y - y0) * s];
  const NS = "http://www.w3.org/2000/svg";
  const node = (tag, attrs, title) => {
    const n = document.createElementNS(NS, tag);
    for (const [a, v] of Object.entries(attrs)) n.setAttribute(a, v);
    if (title) { const t = document.createElementNS(NS, "title"); t.textContent = title; n.append(t); }
    return n;
  };
  const poly = (ring) => ring.map((c) => P(c).map((v) => v.toFixed(1)).join(",")).join(" ");
  const kids = [];
  for (const f of grid.features) kids.push(node("polygon", { class: "cell", points: poly(f.geometry.coordinates[0]) }, f.properties.grid));
  const maxScore = Math.max(1e-9, ...risk.features.map((f) => f.properties.score));
  for (const f of risk.features) {
    const o = (0.15 + 0.6 * f.properties.score / maxScore).toFixed(2);
    kids.push(node("polygon", { class: "risk", fill: `rgba(224,96,48,${o})`, points: poly(f.geometry.coordinates[0]) }, `risk ${f.properties.score.toFixed(3)}`));
  }
  for (const a of state.alerts.values()) {
    if (a.lon == null || a.status === "resolved") continue;
    const [x, y] = P([a.lon, a.lat]);
    const m = node("rect", { class: "alert", x: (x - 4).toFixed(1), y: (y - 4).toFixed(1), width: 8, height: 8 }, a.summary);
    m.addEventListener("click", () => select(a.alert_id));
    kids.push(m);
  }
  for (const u of units.units) {
    const [x, y] = P([u.lon, u.lat]);
    kids.push(node("circle", { class: "unit", cx: x.toFixed(1), cy: y.toFixed(1), r: 4 }, `${u.unit_id}: ${u.status}`));
  }
  svg.replaceChildren(...kids);
}

// ---- start ---------------------------------------------------------------

$("login-form").addEventListener("submit", (ev) => { ev.preventDefault(); login($("login-token").value.trim()); });
$("logout-btn").addEventListener("click", () => logout());
const saved = sessionStorage.getItem("citywatch-token");
if (saved) login(saved);
