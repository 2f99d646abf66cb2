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

// One clock for ages: event time. The server reports the latest event time
// ingested; between reports it advances at the rate measured between the last
// two (a replayed feed runs faster than the wall clock, and says so).
const clock = { event: null, at: 0, rate: 1, simulated: false, zone: undefined };

function noteClock(c) {
  const now = Date.now();
  if (c.event_ms != null && clock.event != null && now > clock.at && c.event_ms >= clock.event) {
    const r = (c.event_ms - clock.event) / (now - clock.at);
    if (r > 0) clock.rate = clock.rate === 1 ? r : 0.5 * clock.rate + 0.5 * r;
  }
  clock.event = c.event_ms; clock.at = now; clock.simulated = c.simulated; clock.zone = c.time_zone || clock.zone;
  renderClock();
}

function eventNow() {
  if (clock.event == null) return Date.now();
  return clock.event + (clock.simulated ? (Date.now() - clock.at) * clock.rate : Date.now() - clock.at);
}

function fmtTime(ms, withDate) {
  const opts = { timeZone: clock.zone, hour: "2-digit", minute: "2-digit", second: withDate ? "2-digit" : undefined, hour12: false };
  if (withDate) Object.assign(opts, { year: "numeric", month: "2-digit", day: "2-digit" });
  try { return new Intl.DateTimeFormat(undefined, opts).format(new Date(ms)); } catch (e) { return new Date(ms).toISOString(); }
}

function renderClock() {
  const c = $("clock");
  if (clock.event == null) { c.textContent = ""; return; }
  const t = fmtTime(eventNow(), false);
  c.textContent = clock.simulated ? `event time ${t} (simulated, ~${Math.round(clock.rate)}x)` : `event time ${t}`;
  c.title = clock.simulated ? "A replayed feed drives event time; ages are in event time." : "Ages are in event time.";
}

async function loadClock() {
  try { noteClock(await api("/api/v1/clock")); } catch (e) { /* the clock is optional */ }
}

function age(ms) {
  const s = Math.max(0, Math.round((eventNow() - ms) / 1000));
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
  clock.zone = state.me.time_zone;
  await loadClock();
  await loadAlerts();
  stream();
  loadGeo().then(wantCells);
  state.mapTimer = setInterval(refreshLive, 10000);
}

function logout(msg) {
  sessionStorage.removeItem("citywatch-token");
  if (state.abort) state.abort.abort();
  clearInterval(state.mapTimer);
  state.token = null; state.alerts.clear(); state.selected = null; state.lastId = null;
  map.geo = null; map.view = null; map.cells = null; map.cellsBox = null;
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
  const frag = document.createDocumentFragment();
  for (const tr of rows.map((a) => {
    const tr = el("tr", { id: "alert-" + a.alert_id, "data-status": a.status, class: a.status === "new" && a._fresh ? "fresh" : "" },
      el("td", {}, el("span", { class: "sev sev-" + a.severity, text: a.severity })),
      el("td", { class: "age", "data-ms": String(a.event_ts_ms), text: age(a.event_ts_ms) }),
      el("td", { class: "status status-" + a.status, text: a.status + (a.level !== "community" && a.level !== "city" ? " ↑" + a.level : "") }),
      el("td", { class: "assignee", text: a.assignee || "—" }),
      el("td", { class: "summary", text: a.summary }));
    if (a.alert_id === state.selected) tr.classList.add("selected");
    tr.addEventListener("click", () => select(a.alert_id));
    return tr;
  })) frag.append(tr);
  $("queue-body").replaceChildren(frag);
  $("queue-empty").hidden = rows.length > 0;
  renderMyArea();
  scheduleDraw();
  if (state.selected) showDetail(state.alerts.get(state.selected));
}

// An officer's first view: what is open in their area now, and the newest alert.
function renderMyArea() {
  const box = $("my-area");
  const o = state.me && state.me.officer;
  if (!o || o.scope === "city") { box.hidden = true; return; }
  const open = [...state.alerts.values()].filter((a) => a.status !== "resolved");
  const fresh = open.filter((a) => a.status === "new");
  const latest = open.sort((x, y) => y.event_ts_ms - x.event_ts_ms)[0];
  const kids = [el("h2", { text: "My area now: " + o.scope }),
    el("span", {}, el("span", { class: "count", text: String(fresh.length) }), " new"),
    el("span", {}, el("span", { class: "count", text: String(open.length) }), " open")];
  if (latest) {
    const b = el("button", { type: "button", class: "latest", text: "Newest: " + latest.summary });
    b.addEventListener("click", () => select(latest.alert_id));
    kids.push(b);
  } else kids.push(el("span", { class: "muted", text: "No open alerts in your area." }));
  box.replaceChildren(...kids);
  box.hidden = false;
}

setInterval(() => {
  document.querySelectorAll("td.age").forEach((td) => { td.textContent = age(+td.dataset.ms); });
  renderClock();
}, 1000);

async function select(id) {
  const first = state.selected !== id;
  state.selected = id;
  $("d-error").textContent = "";
  $("reveal-out").textContent = "";
  try {
    const a = await api("/api/v1/alerts/" + encodeURIComponent(id)); // audited as a view
    upsert(a, false);
  } catch (e) { $("d-error").textContent = e.message; }
  render();
  // One column (phones): bring the detail into view.
  if (first && window.matchMedia("(max-width: 820px)").matches) $("detail").scrollIntoView({ behavior: "smooth", block: "start" });
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
// Canvas, no library. The overview (/api/v1/grid: district, street and
// community boundaries and label points, integer units of `unit` degrees from
// `origin`) is fetched once per sign-in; the cells of the view
// (/api/v1/grid/cells) when zoomed in far enough; risk and units every 10 s.

const map = { geo: null, cells: null, cellsBox: null, cellsPending: null, risk: [], units: [], view: null,
  tooMany: 0, borders: [[], [], [], []], hitAlerts: [], drag: null, pointers: new Map() };
const BORDER_STYLE = [[2.4, "#24324a"], [1.5, "#5b6b84"], [0.9, "#93a1b5"], [0.5, "#c9d1dc"]];

function mapMsg(text, retry) {
  const m = $("map-msg");
  m.replaceChildren(text || "");
  if (retry) {
    const b = el("button", { type: "button", text: "Retry" });
    b.addEventListener("click", () => { mapMsg(""); loadGeo(); });
    m.append(" ", b);
  }
  m.hidden = !text;
}

// World coordinates: x east, y north, both in latitude units (x scaled by cos(lat)).
function toWorld(lon, lat) {
  const g = map.geo;
  if (g.kx === null) g.kx = Math.cos((lat * Math.PI) / 180); // the default grid: no cells to take it from
  return [(lon - g.origin[0]) / g.unit * g.kx, (lat - g.origin[1]) / g.unit];
}

function decodeLine(flat, kx) {
  // [level, x0, y0, dx, dy, ...] -> Float64Array of absolute world points
  const out = new Float64Array(flat.length - 1);
  let x = 0, y = 0;
  for (let i = 1; i < flat.length; i += 2) {
    x += flat[i]; y += flat[i + 1];
    out[i - 1] = x * kx; out[i] = y;
  }
  return out;
}

async function loadGeo() {
  try {
    const g = await api("/api/v1/grid");
    g.kx = g.bbox ? Math.cos(((g.origin[1] + ((g.bbox[1] + g.bbox[3]) / 2) * g.unit) * Math.PI) / 180) : null;
    map.geo = g;
    map.borders = [[], [], [], []];
    for (const b of g.borders) map.borders[b[0]].push(decodeLine(b, g.kx));
    map.cells = null; map.cellsBox = null;
    map.view = null;
    mapMsg(g.cells ? "" : "No grids file: the map shows risk, units and alerts only.");
  } catch (e) {
    map.geo = null;
    mapMsg("The map could not be loaded: " + e.message, true);
    return;
  }
  await refreshLive();
}

async function refreshLive() {
  if (!state.token) return;
  loadClock();
  try {
    const [risk, units] = await Promise.all([api("/api/v1/risk"), api("/api/v1/units")]);
    map.risk = risk.features;
    map.units = units.units;
  } catch (e) {
    mapMsg("Risk and units could not be loaded: " + e.message, false);
  }
  drawMap();
}

function canvasSize() {
  const c = $("map");
  const dpr = window.devicePixelRatio || 1;
  const w = c.clientWidth || 600, h = c.clientHeight || 420;
  if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
    c.width = Math.round(w * dpr); c.height = Math.round(h * dpr);
  }
  return { w, h, dpr };
}

// Everything to frame: the scope's cells, else units and alerts.
function extent() {
  const g = map.geo;
  if (g && g.bbox) {
    const [x0, y0, x1, y1] = g.bbox;
    return [x0 * g.kx, y0, x1 * g.kx, y1];
  }
  const pts = [];
  for (const u of map.units) pts.push(toWorld(u.lon, u.lat));
  for (const a of state.alerts.values()) if (a.lon != null) pts.push(toWorld(a.lon, a.lat));
  for (const f of map.risk) for (const c of f.geometry.coordinates[0]) pts.push(toWorld(c[0], c[1]));
  if (!pts.length) return null;
  let b = [Infinity, Infinity, -Infinity, -Infinity];
  for (const [x, y] of pts) b = [Math.min(b[0], x), Math.min(b[1], y), Math.max(b[2], x), Math.max(b[3], y)];
  return b;
}

function fitView() {
  const { w, h } = canvasSize();
  const b = extent();
  if (!b) { map.view = null; return; }
  const bw = Math.max(b[2] - b[0], 200), bh = Math.max(b[3] - b[1], 200);
  map.view = { cx: (b[0] + b[2]) / 2, cy: (b[1] + b[3]) / 2, s: Math.min((w - 20) / bw, (h - 20) / bh) };
}

const toScreen = (x, y) => { const { w, h } = canvasSize(); const v = map.view; return [(x - v.cx) * v.s + w / 2, h / 2 - (y - v.cy) * v.s]; };
const fromScreen = (sx, sy) => { const { w, h } = canvasSize(); const v = map.view; return [(sx - w / 2) / v.s + v.cx, (h / 2 - sy) / v.s + v.cy]; };

function areaColour(i) { return `hsl(${(i * 137.508) % 360},45%,93%)`; }

// Cells of the view, when there are few enough (the server says when not).
let cellsTimer = null;
function wantCells() {
  clearTimeout(cellsTimer);
  cellsTimer = setTimeout(loadCells, 200);
}

async function loadCells() {
  const g = map.geo, v = map.view;
  if (!g || !g.cells || !v) return;
  const { w, h } = canvasSize();
  const [x0, y1] = fromScreen(0, 0), [x1, y0] = fromScreen(w, h);
  const box = [Math.floor(x0 / g.kx), Math.floor(y0), Math.ceil(x1 / g.kx), Math.ceil(y1)];
  // Too far out: the view holds a large share of the city's cells.
  const [bx0, by0, bx1, by1] = g.bbox;
  const share = (Math.max(0, Math.min(box[2], bx1) - Math.max(box[0], bx0)) * Math.max(0, Math.min(box[3], by1) - Math.max(box[1], by0))) /
    Math.max(1, (bx1 - bx0) * (by1 - by0));
  if (share * g.cells > g.max_view_cells) { map.cells = null; map.tooMany = Math.round(share * g.cells); drawMap(); return; }
  const c = map.cellsBox;
  if (c && box[0] >= c[0] && box[1] >= c[1] && box[2] <= c[2] && box[3] <= c[3]) return;
  const mx = (box[2] - box[0]) / 2, my = (box[3] - box[1]) / 2;
  const want = [Math.floor(box[0] - mx), Math.floor(box[1] - my), Math.ceil(box[2] + mx), Math.ceil(box[3] + my)];
  const key = want.join(",");
  if (map.cellsPending === key) return;
  map.cellsPending = key;
  try {
    const r = await api("/api/v1/grid/cells?bbox=" + key);
    if (map.cellsPending !== key) return;
    if (r.too_many) { map.cells = null; map.tooMany = r.too_many; } else {
      map.tooMany = 0;
      map.cells = r;
      map.cellsBox = want;
      r.gridBorders = r.borders.map((b) => decodeLine(b, g.kx));
    }
  } catch (e) {
    mapMsg("Cells could not be loaded: " + e.message, false);
  } finally {
    if (map.cellsPending === key) map.cellsPending = null;
  }
  drawMap();
}

let drawQueued = false;
function scheduleDraw() {
  if (drawQueued) return;
  drawQueued = true;
  requestAnimationFrame(() => { drawQueued = false; drawMap(); });
}

function drawMap() {
  const c = $("map");
  if (!c || !state.token) return;
  const { w, h, dpr } = canvasSize();
  const ctx = c.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.fillStyle = "#f7f9fc";
  ctx.fillRect(0, 0, w, h);
  if (!map.geo) return; // loading, or failed (the message says so)
  if (!map.view) fitView();
  if (!map.view) { ctx.fillStyle = "#778"; ctx.font = "14px system-ui"; ctx.fillText("Nothing to draw yet.", 16, 28); return; }
  const g = map.geo;
  const v = map.view;
  // Cells, coloured by community.
  if (g && map.cells) {
    const cl = map.cells.cells, hex = map.cells.hex;
    const byComm = new Map();
    for (let i = 0; i < cl.length; i += 4) {
      let p = byComm.get(cl[i + 2]);
      if (!p) { p = new Path2D(); byComm.set(cl[i + 2], p); }
      const [sx, sy] = toScreen(cl[i] * g.kx, cl[i + 1]);
      for (let k = 0; k < hex.length; k += 2) {
        const px = sx + hex[k] * g.kx * v.s, py = sy - hex[k + 1] * v.s;
        if (k === 0) p.moveTo(px, py); else p.lineTo(px, py);
      }
      p.closePath();
    }
    for (const [comm, p] of byComm) { ctx.fillStyle = areaColour(comm); ctx.fill(p); }
  }
  // Risk surface.
  if (g || map.risk.length) {
    const maxScore = Math.max(1e-9, ...map.risk.map((f) => f.properties.score));
    for (const f of map.risk) {
      const ring = f.geometry.coordinates[0];
      ctx.beginPath();
      ring.forEach(([lon, lat], i) => { const [x, y] = toScreen(...toWorld(lon, lat)); if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y); });
      ctx.fillStyle = `rgba(224,96,48,${(0.2 + 0.6 * f.properties.score / maxScore).toFixed(2)})`;
      ctx.fill();
    }
  }
  // Boundaries: grids (view only), communities, streets, districts.
  const lines = [map.borders[0], map.borders[1], map.borders[2], map.cells ? map.cells.gridBorders : []];
  for (let level = 3; level >= 0; level--) {
    if (level === 2 && v.s < 0.02) continue;
    ctx.beginPath();
    for (const ln of lines[level]) {
      for (let i = 0; i < ln.length; i += 2) {
        const [x, y] = toScreen(ln[i], ln[i + 1]);
        if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y);
      }
    }
    ctx.lineWidth = BORDER_STYLE[level][0]; ctx.strokeStyle = BORDER_STYLE[level][1];
    ctx.stroke();
  }
  // Labels, largest areas first, skipping any that would overlap.
  if (g) drawLabels(ctx, w, h);
  // Units and alerts.
  for (const u of map.units) {
    const [x, y] = toScreen(...toWorld(u.lon, u.lat));
    ctx.beginPath(); ctx.arc(x, y, 4.5, 0, 2 * Math.PI);
    ctx.fillStyle = u.status === "available" ? "#1f6fd1" : "#6a4fc4"; ctx.fill();
    ctx.lineWidth = 1.2; ctx.strokeStyle = "#fff"; ctx.stroke();
  }
  map.hitAlerts = [];
  for (const a of state.alerts.values()) {
    if (a.lon == null || a.status === "resolved") continue;
    const [x, y] = toScreen(...toWorld(a.lon, a.lat));
    if (x < -10 || y < -10 || x > w + 10 || y > h + 10) continue;
    const r = a.alert_id === state.selected ? 7 : 5;
    ctx.fillStyle = SEV_COLOUR[a.severity] || "#d0461e";
    ctx.fillRect(x - r, y - r, 2 * r, 2 * r);
    ctx.lineWidth = a.alert_id === state.selected ? 2.5 : 1.2; ctx.strokeStyle = a.alert_id === state.selected ? "#000" : "#fff";
    ctx.strokeRect(x - r, y - r, 2 * r, 2 * r);
    map.hitAlerts.push([x, y, a.alert_id]);
  }
  const hint = map.tooMany ? `Zoom in to see the ${map.tooMany.toLocaleString()} grid cells here.` : "";
  $("map-hint").textContent = hint;
  c.dataset.drawn = String(Date.now());
}
const SEV_COLOUR = { extreme: "#8b0000", severe: "#d0461e", moderate: "#d99a00", minor: "#5a7d9a" };

function drawLabels(ctx, w, h) {
  const g = map.geo, v = map.view;
  const placed = [];
  const kinds = [[g.districts, 15, "600", "#1d2430", 0], [g.streets, 13, "500", "#34445e", 0.004], [g.communities, 12, "400", "#4d5b70", 0.03]];
  if (map.cells) kinds.push([Object.values(map.cells.grids), 11, "400", "#6b778a", 0.3]);
  for (const [list, size, weight, colour, minScale] of kinds) {
    if (v.s < minScale) continue;
    ctx.font = `${weight} ${size}px system-ui, sans-serif`;
    for (const a of list) {
      if (!a) continue;
      const [x, y] = toScreen(a.at[0] * g.kx, a.at[1]);
      if (x < 0 || y < 0 || x > w || y > h) continue;
      const text = a.name || a.id;
      const tw = ctx.measureText(text).width;
      const box = [x - tw / 2 - 2, y - size / 2 - 2, x + tw / 2 + 2, y + size / 2 + 2];
      if (placed.some((p) => !(box[2] < p[0] || box[0] > p[2] || box[3] < p[1] || box[1] > p[3]))) continue;
      placed.push(box);
      ctx.textAlign = "center"; ctx.textBaseline = "middle";
      ctx.lineWidth = 3; ctx.strokeStyle = "rgba(255,255,255,.9)"; ctx.strokeText(text, x, y);
      ctx.fillStyle = colour; ctx.fillText(text, x, y);
    }
  }
}

function zoomAt(sx, sy, factor) {
  if (!map.view) return;
  const [wx, wy] = fromScreen(sx, sy);
  map.view.s *= factor;
  const [nx, ny] = fromScreen(sx, sy);
  map.view.cx += wx - nx; map.view.cy += wy - ny;
  drawMap(); wantCells();
}

function setupMap() {
  const c = $("map");
  c.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const r = c.getBoundingClientRect();
    zoomAt(ev.clientX - r.left, ev.clientY - r.top, Math.exp(-ev.deltaY * 0.0015));
  }, { passive: false });
  c.addEventListener("pointerdown", (ev) => {
    c.setPointerCapture(ev.pointerId);
    map.pointers.set(ev.pointerId, [ev.clientX, ev.clientY]);
    map.drag = { x: ev.clientX, y: ev.clientY, moved: 0 };
  });
  c.addEventListener("pointermove", (ev) => {
    if (!map.pointers.has(ev.pointerId) || !map.view) return;
    const prev = map.pointers.get(ev.pointerId);
    if (map.pointers.size === 2) {
      const [other] = [...map.pointers.entries()].filter(([id]) => id !== ev.pointerId).map(([, p]) => p);
      const d0 = Math.hypot(prev[0] - other[0], prev[1] - other[1]), d1 = Math.hypot(ev.clientX - other[0], ev.clientY - other[1]);
      const r = c.getBoundingClientRect();
      if (d0 > 0) zoomAt((ev.clientX + other[0]) / 2 - r.left, (ev.clientY + other[1]) / 2 - r.top, d1 / d0);
    } else {
      map.view.cx -= (ev.clientX - prev[0]) / map.view.s;
      map.view.cy += (ev.clientY - prev[1]) / map.view.s;
      if (map.drag) map.drag.moved += Math.abs(ev.clientX - prev[0]) + Math.abs(ev.clientY - prev[1]);
      drawMap();
    }
    map.pointers.set(ev.pointerId, [ev.clientX, ev.clientY]);
  });
  const up = (ev) => {
    map.pointers.delete(ev.pointerId);
    if (map.drag && map.drag.moved < 5) {
      const r = c.getBoundingClientRect();
      const [x, y] = [ev.clientX - r.left, ev.clientY - r.top];
      let best = null, bd = 12;
      for (const [ax, ay, id] of map.hitAlerts) { const d = Math.hypot(ax - x, ay - y); if (d < bd) { bd = d; best = id; } }
      if (best) select(best);
    } else wantCells();
    map.drag = null;
  };
  c.addEventListener("pointerup", up);
  c.addEventListener("pointercancel", up);
  $("map-in").addEventListener("click", () => { const { w, h } = canvasSize(); zoomAt(w / 2, h / 2, 1.6); });
  $("map-out").addEventListener("click", () => { const { w, h } = canvasSize(); zoomAt(w / 2, h / 2, 1 / 1.6); });
  $("map-fit").addEventListener("click", () => { fitView(); drawMap(); wantCells(); });
  new ResizeObserver(() => { if (state.token) { drawMap(); } }).observe(c);
}
setupMap();

// ---- start ---------------------------------------------------------------

$("login-form").addEventListener("submit", (ev) => { ev.preventDefault(); login($("login-token").value.trim()); });
$("logout-btn").addEventListener("click", () => logout());
const saved = sessionStorage.getItem("citywatch-token");
if (saved) login(saved);
