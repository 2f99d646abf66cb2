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
  if (r.status === 401) { logout(t("login.refused")); throw new Error("unauthorized"); }
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
const clock = { event: null, at: 0, rate: null, simulated: false, zone: undefined };

function noteClock(c) {
  const now = Date.now();
  // The rate from reports at least 5 s apart (closer ones are mostly jitter).
  if (c.event_ms != null && clock.event != null && now - clock.at < 5000) { renderClock(); return; }
  if (c.event_ms != null && clock.event != null && c.event_ms >= clock.event) {
    const r = (c.event_ms - clock.event) / (now - clock.at);
    if (r > 0) clock.rate = clock.rate === null ? r : 0.5 * clock.rate + 0.5 * r;
  }
  clock.event = c.event_ms; clock.at = now; clock.simulated = c.simulated; clock.zone = c.time_zone || clock.zone;
  renderClock();
}

function eventNow() {
  if (clock.event == null) return Date.now();
  return clock.event + (Date.now() - clock.at) * (clock.simulated ? clock.rate ?? 1 : 1);
}

function fmtTime(ms, withDate) {
  const opts = { timeZone: clock.zone, hour: "2-digit", minute: "2-digit", second: withDate ? "2-digit" : undefined, hour12: false };
  if (withDate) Object.assign(opts, { year: "numeric", month: "2-digit", day: "2-digit" });
  try { return new Intl.DateTimeFormat(undefined, opts).format(new Date(ms)); } catch (e) { return new Date(ms).toISOString(); }
}

function renderClock() {
  const c = $("clock");
  if (clock.event == null) { c.textContent = ""; return; }
  const now = fmtTime(eventNow(), false);
  c.textContent = !clock.simulated ? t("clock.live", { t: now }) : clock.rate ? t("clock.sim", { t: now, rate: Math.round(clock.rate) }) : t("clock.sim0", { t: now });
  c.title = clock.simulated ? t("clock.sim.title") : t("clock.live.title");
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

// ---- language: every string of the console, in one catalogue ------------
// English and Simplified Chinese; the browser's language picks one unless
// the user chose with the switch (kept in localStorage). Static text in the
// HTML carries data-i18n (text), data-i18n-ph (placeholder) or
// data-i18n-title (tooltip) keys; code calls t(key, vars).
const CATALOGUE = {
  en: {
    "title": "citywatch console", "login.prompt": "Sign in with your access token.", "login.token": "access token",
    "login.button": "Sign in", "login.unknown": "Unknown token.", "login.refused": "Your token was refused.",
    "logout": "Sign out", "conn.offline": "offline", "conn.live": "live", "conn.reconnecting": "reconnecting",
    "lang": "Language", "tab.alerts": "Alerts", "tab.health": "Pipeline health",
    "f.status": "Status", "f.severity": "Severity", "f.model": "Model", "f.search": "Search", "f.search.ph": "summary, subject, place",
    "f.open": "open", "f.any": "any", "f.all": "all",
    "status.new": "new", "status.acknowledged": "acknowledged", "status.resolved": "resolved",
    "sev.extreme": "extreme", "sev.severe": "severe", "sev.moderate": "moderate", "sev.minor": "minor",
    "level.community": "community", "level.station": "station", "level.district": "district", "level.city": "city",
    "q.severity": "Severity", "q.age": "Age", "q.age.title": "in event time", "q.status": "Status", "q.assignee": "Assignee",
    "q.alert": "Alert", "q.empty": "No alerts in your area.",
    "area.title": "My area now: {area}", "area.new": "new", "area.open": "open", "area.newest": "Newest: {summary}",
    "area.none": "No open alerts in your area.",
    "clock.sim": "event time {t} (simulated, ~{rate}x)", "clock.sim0": "event time {t} (simulated)", "clock.live": "event time {t}",
    "clock.sim.title": "A replayed feed drives event time; ages are in event time.", "clock.live.title": "Ages are in event time.",
    "d.evidence": "Evidence", "d.raw": "Raw evidence (JSON)", "d.where": "Where", "d.outside": "outside the city's grids",
    "d.severity": "Severity", "d.status": "Status", "d.level": "{level} level", "d.assignee": "Assignee",
    "d.event_time": "Event time", "d.simulated": " (simulated)", "d.action": "Action", "d.model": "Model", "d.score": "Score",
    "d.score.unit": "{score} (the model's scale; higher is more urgent)", "d.grid": "Grid", "d.acked": "Acknowledged",
    "d.resolved": "Resolved", "d.duplicates": "Duplicates", "d.subject": "Subject", "d.alert_id": "Alert id",
    "act.ack": "Acknowledge", "act.note": "resolution note", "act.resolve": "Resolve", "act.cap": "CAP XML",
    "act.note.required": "A resolution note is required.", "act.reason": "reason (required, audited)",
    "act.reveal": "Reveal number", "act.reason.required": "A reason is required to reveal a number.", "act.pseudonym": "pseudonym",
    "yes": "yes", "no": "no",
    "map.title": "Map", "map.sub": "districts, streets, communities, risk, units, alerts", "map.zoom_in": "zoom in",
    "map.zoom_out": "zoom out", "map.fit": "fit", "map.retry": "Retry", "map.risk": "risk", "map.unit": "unit", "map.alert": "alert",
    "map.borders": "district / street / community", "map.nogrids": "No grids file: the map shows risk, units and alerts only.",
    "map.failed": "The map could not be loaded: {error}", "map.live_failed": "Risk and units could not be loaded: {error}",
    "map.cells_failed": "Cells could not be loaded: {error}", "map.nothing": "Nothing to draw yet.",
    "map.zoom_hint": "Zoom in to see the {n} grid cells here.",
    "h.title": "Pipeline health", "h.updated": "updated {t}", "h.failed": "Health figures could not be loaded: {error}",
    "h.streams": "Streams", "h.stream": "Stream", "h.rate": "Events/s", "h.events": "Events", "h.rejected": "Rejected rows",
    "h.chart": "Alerts per minute, last hour", "h.reasons": "Top reasons for rejected rows", "h.column": "Column", "h.code": "Code",
    "h.rows": "Rows", "h.no_reasons": "No rows rejected.", "h.latest": "Latest event time", "h.watermark": "Watermark",
    "h.lag": "Watermark lag", "h.lag.value": "{s} s of event time", "h.late": "Late rows", "h.refused": "Refused requests",
    "h.store": "Alert store", "h.pushes": "Pushes to consoles", "h.escalations": "Escalations", "h.no_alerts": "No alerts in the last hour.",
    "h.ago": "-60 min", "h.now": "now",
    "place.around": "around {parts}", "place.part": "{level} '{name}'", "place.sep": ", ",
    "place.community": "community", "place.street": "street", "place.district": "district",
  },
  "zh-CN": {
    "title": "城市守望 控制台", "login.prompt": "请输入访问令牌登录。", "login.token": "访问令牌",
    "login.button": "登录", "login.unknown": "令牌无效。", "login.refused": "令牌被拒绝。",
    "logout": "退出", "conn.offline": "离线", "conn.live": "实时", "conn.reconnecting": "重新连接中",
    "lang": "语言", "tab.alerts": "警情", "tab.health": "数据管道状态",
    "f.status": "状态", "f.severity": "级别", "f.model": "模型", "f.search": "搜索", "f.search.ph": "摘要、对象、地点",
    "f.open": "未结", "f.any": "全部", "f.all": "全部",
    "status.new": "新", "status.acknowledged": "已签收", "status.resolved": "已处置",
    "sev.extreme": "特别严重", "sev.severe": "严重", "sev.moderate": "较重", "sev.minor": "一般",
    "level.community": "社区", "level.station": "派出所", "level.district": "分局", "level.city": "市局",
    "q.severity": "级别", "q.age": "时长", "q.age.title": "按事件时间", "q.status": "状态", "q.assignee": "负责人",
    "q.alert": "警情", "q.empty": "辖区内暂无警情。",
    "area.title": "我的辖区：{area}", "area.new": "新", "area.open": "未结", "area.newest": "最新：{summary}",
    "area.none": "辖区内暂无未结警情。",
    "clock.sim": "事件时间 {t}（模拟，约 {rate} 倍速）", "clock.sim0": "事件时间 {t}（模拟）", "clock.live": "事件时间 {t}",
    "clock.sim.title": "回放数据驱动事件时间；时长按事件时间计算。", "clock.live.title": "时长按事件时间计算。",
    "d.evidence": "证据", "d.raw": "原始证据（JSON）", "d.where": "地点", "d.outside": "不在城市网格内",
    "d.severity": "级别", "d.status": "状态", "d.level": "{level}级", "d.assignee": "负责人",
    "d.event_time": "事件时间", "d.simulated": "（模拟）", "d.action": "处置建议", "d.model": "模型", "d.score": "评分",
    "d.score.unit": "{score}（模型自身尺度，越高越紧急）", "d.grid": "网格", "d.acked": "已签收",
    "d.resolved": "已处置", "d.duplicates": "重复次数", "d.subject": "对象", "d.alert_id": "警情编号",
    "act.ack": "签收", "act.note": "处置说明", "act.resolve": "处置完毕", "act.cap": "CAP XML",
    "act.note.required": "必须填写处置说明。", "act.reason": "查询理由（必填，将被审计）",
    "act.reveal": "查看号码", "act.reason.required": "查看号码必须填写理由。", "act.pseudonym": "化名",
    "yes": "是", "no": "否",
    "map.title": "地图", "map.sub": "分局、街道、社区、风险、警力、警情", "map.zoom_in": "放大",
    "map.zoom_out": "缩小", "map.fit": "全图", "map.retry": "重试", "map.risk": "风险", "map.unit": "警力", "map.alert": "警情",
    "map.borders": "分局 / 街道 / 社区", "map.nogrids": "没有网格文件：地图仅显示风险、警力和警情。",
    "map.failed": "地图加载失败：{error}", "map.live_failed": "风险和警力加载失败：{error}",
    "map.cells_failed": "网格单元加载失败：{error}", "map.nothing": "暂无可显示内容。",
    "map.zoom_hint": "放大以查看此处的 {n} 个网格单元。",
    "h.title": "数据管道状态", "h.updated": "更新于 {t}", "h.failed": "状态数据加载失败：{error}",
    "h.streams": "数据流", "h.stream": "数据流", "h.rate": "事件/秒", "h.events": "事件数", "h.rejected": "拒收行数",
    "h.chart": "近一小时每分钟警情数", "h.reasons": "拒收原因排行", "h.column": "字段", "h.code": "代码",
    "h.rows": "行数", "h.no_reasons": "没有拒收的行。", "h.latest": "最新事件时间", "h.watermark": "水位线",
    "h.lag": "水位线延迟", "h.lag.value": "{s} 秒（事件时间）", "h.late": "迟到行数", "h.refused": "被拒请求",
    "h.store": "警情库大小", "h.pushes": "推送次数", "h.escalations": "升级次数", "h.no_alerts": "近一小时无警情。",
    "h.ago": "-60 分钟", "h.now": "现在",
    "place.around": "{parts}附近", "place.part": "{level}“{name}”", "place.sep": "，",
    "place.community": "社区", "place.street": "街道", "place.district": "分局",
  },
};
// Evidence labels in Chinese (English labels come from the keys).
const EVIDENCE_ZH = {
  alarm_id: "警情编号", category: "类别", deadline: "期限", dispatched: "已派警", late_input: "迟到数据", limit: "时限",
  nearest_unit: "最近警力", nearest_unit_distance: "最近警力距离", priority: "优先级", received: "接警时间",
  caller: "主叫", callee: "被叫", call_id: "通话编号", call_ids: "通话编号", call_start: "通话开始", open: "通话时长",
  callee_age: "被叫年龄", callee_vulnerable: "易受害人群", risk: "风险", international: "境外号码",
  virtual_operator: "虚拟运营商", spoofed_service: "伪冒服务号码", service: "服务号码", reports: "举报次数",
  fanout_1h: "一小时内呼叫人数", fanout_24h: "当日呼叫人数", number: "号码", reason: "原因", cell: "网格单元",
  score: "评分", rank: "排名", community: "社区", last_patrol: "上次巡逻",
};

function pickLang() {
  const saved = localStorage.getItem("citywatch-lang");
  if (saved && CATALOGUE[saved]) return saved;
  return (navigator.languages || [navigator.language || "en"]).some((l) => /^zh/i.test(l)) ? "zh-CN" : "en";
}
let LANG = pickLang();

function t(key, vars) {
  const text = (CATALOGUE[LANG] && CATALOGUE[LANG][key]) || CATALOGUE.en[key] || key;
  return vars ? text.replace(/\{(\w+)\}/g, (_, k) => (k in vars ? String(vars[k]) : "{" + k + "}")) : text;
}

function applyLang() {
  document.documentElement.lang = LANG;
  document.title = t("title");
  for (const e of document.querySelectorAll("[data-i18n]")) e.textContent = t(e.dataset.i18n);
  for (const e of document.querySelectorAll("[data-i18n-ph]")) e.placeholder = t(e.dataset.i18nPh);
  for (const e of document.querySelectorAll("[data-i18n-title]")) { e.title = t(e.dataset.i18nTitle); e.setAttribute("aria-label", t(e.dataset.i18nTitle)); }
  for (const sel of document.querySelectorAll(".lang-switch")) sel.value = LANG;
  $("conn").textContent = t($("conn").classList.contains("live") ? "conn.live" : "conn.offline");
}

function setLang(lang) {
  LANG = CATALOGUE[lang] ? lang : "en";
  localStorage.setItem("citywatch-lang", LANG);
  applyLang();
  if (state.token) { render(); renderClock(); drawMap(); if (!$("health-view").hidden) loadHealth(); }
}
for (const sel of document.querySelectorAll(".lang-switch")) sel.addEventListener("change", () => setLang(sel.value));

// ---- login ---------------------------------------------------------------

async function login(token) {
  state.token = token;
  try {
    state.me = await api("/api/v1/me");
  } catch (e) {
    $("login-error").textContent = e.message === "unauthorized" ? t("login.unknown") : e.message;
    state.token = null;
    return;
  }
  sessionStorage.setItem("citywatch-token", token);
  const o = state.me.officer;
  $("who").textContent = `${o.name} (${o.role}, ${o.scope})`;
  $("login-view").hidden = true;
  $("main-view").hidden = false;
  $("reveal-box").hidden = !state.me.can_reveal;
  $("tabs").hidden = o.scope !== "city";
  clock.zone = state.me.time_zone;
  await loadClock();
  await loadAlerts();
  stream();
  loadGeo().then(() => { renderMyArea(); wantCells(); });
  state.mapTimer = setInterval(refreshLive, 10000);
}

function logout(msg) {
  sessionStorage.removeItem("citywatch-token");
  if (state.abort) state.abort.abort();
  clearInterval(state.mapTimer);
  showTab("alerts");
  state.token = null; state.alerts.clear(); state.selected = null; state.lastId = null;
  map.geo = null; map.view = null; map.cells = null; map.cellsBox = null;
  $("main-view").hidden = true;
  $("login-view").hidden = false;
  $("conn").classList.remove("live"); $("conn").textContent = t("conn.offline");
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
  if (text && !(a.summary + " " + a.subject + " " + a.kind + " " + (a.place || "")).toLowerCase().includes(text)) return false;
  return true;
}

function render() {
  const rows = [...state.alerts.values()].filter(visible).sort((x, y) =>
    (x.status === "new" ? 0 : 1) - (y.status === "new" ? 0 : 1) ||
    (SEV_RANK[x.severity] ?? 9) - (SEV_RANK[y.severity] ?? 9) || y.updated_ms - x.updated_ms);
  const frag = document.createDocumentFragment();
  for (const tr of rows.map((a) => {
    const tr = el("tr", { id: "alert-" + a.alert_id, "data-status": a.status, class: a.status === "new" && a._fresh ? "fresh" : "" },
      el("td", {}, el("span", { class: "sev sev-" + a.severity, text: t("sev." + a.severity) })),
      el("td", { class: "age", "data-ms": String(a.event_ts_ms), text: age(a.event_ts_ms) }),
      el("td", { class: "status status-" + a.status, text: t("status." + a.status) + (a.level !== "community" && a.level !== "city" ? " ↑" + t("level." + a.level) : "") }),
      el("td", { class: "assignee", text: (a.names && a.names.assignee) || a.assignee || "—", title: a.assignee || "" }),
      el("td", { class: "summary" }, a.summary, ...(a.place ? [el("br"), el("small", { class: "muted", text: placeWords(a) })] : [])));
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
  const kids = [el("h2", { text: t("area.title", { area: areaName(o.scope) }) }),
    el("span", {}, el("span", { class: "count", text: String(fresh.length) }), " " + t("area.new")),
    el("span", {}, el("span", { class: "count", text: String(open.length) }), " " + t("area.open"))];
  if (latest) {
    const b = el("button", { type: "button", class: "latest", text: t("area.newest", { summary: latest.summary + (latest.place ? " — " + placeWords(latest) : "") }) });
    b.addEventListener("click", () => select(latest.alert_id));
    kids.push(b);
  } else kids.push(el("span", { class: "muted", text: t("area.none") }));
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

// Evidence as labelled facts: times in the city's time zone, durations in
// minutes, distances in km, yes/no; nulls left out. Raw JSON one click away.
function evidenceFacts(ev) {
  if (!ev || typeof ev !== "object" || Array.isArray(ev)) return [[t("d.evidence"), JSON.stringify(ev)]];
  const mins = (ms) => (ms >= 60000 ? `${Math.round(ms / 6000) / 10} min` : `${Math.round(ms / 1000)} s`);
  const plain = (v) => (typeof v === "boolean" ? t(v ? "yes" : "no") : typeof v === "number" && !Number.isInteger(v) ? String(Math.round(v * 1000) / 1000) : String(v));
  const out = [];
  for (const [key, v] of Object.entries(ev)) {
    if (v === null || (Array.isArray(v) && !v.length)) continue;
    let label = key, text;
    if (Array.isArray(v)) text = v.map(plain).join(", ");
    else if (typeof v === "number" && key.endsWith("_ts_ms")) { label = key.slice(0, -6); text = fmtTime(v, true); }
    else if (typeof v === "number" && key.endsWith("_ms")) { label = key.slice(0, -3); text = mins(v); }
    else if (typeof v === "number" && key.endsWith("_s")) { label = key.slice(0, -2); text = mins(v * 1000); }
    else if (typeof v === "number" && key.endsWith("_m")) { label = key.slice(0, -2); text = v >= 1000 ? `${(v / 1000).toFixed(1)} km` : `${Math.round(v)} m`; }
    else if (typeof v === "object") text = JSON.stringify(v);
    else text = plain(v);
    out.push([factLabel(label), text]);
  }
  return out;
}

function factLabel(key) {
  if (LANG === "zh-CN" && EVIDENCE_ZH[key]) return EVIDENCE_ZH[key];
  const s = key.replace(/_/g, " ");
  return s.charAt(0).toUpperCase() + s.slice(1);
}

// An area's name from the map overview (the scope of a community officer, say), else its id.
function areaName(id) {
  const g = map.geo;
  if (g) for (const list of [g.communities, g.streets, g.districts]) {
    const a = list.find((x) => x && x.id === id);
    if (a && a.name) return `${a.name} (${id})`;
  }
  return id;
}

// Where an alert is, in the console's language (the server's `place` is English).
function placeWords(a) {
  const n = a.names || {};
  const parts = [["community", a.community, n.community], ["street", a.street, n.street], ["district", a.district, n.district]]
    .filter(([, id]) => id).map(([level, id, name]) => t("place.part", { level: t("place." + level), name: name || id }));
  return parts.length ? t("place.around", { parts: parts.join(t("place.sep")) }) : a.place;
}

function named(name, id) { return name ? `${name} (${id})` : id; }

function showDetail(a) {
  if (!a) { $("detail").hidden = true; return; }
  $("detail").hidden = false;
  $("d-summary").textContent = a.summary;
  const n = a.names || {};
  const f = [[t("d.where"), a.place ? placeWords(a) : t("d.outside")],
    [t("d.severity"), t("sev." + a.severity)], [t("d.status"), t("status." + a.status) + (a.level ? " · " + t("d.level", { level: t("level." + a.level) }) : "")],
    [t("d.assignee"), a.assignee ? named(n.assignee, a.assignee) : "—"],
    [t("d.event_time"), fmtTime(a.event_ts_ms, true) + (clock.simulated ? t("d.simulated") : "")],
    [t("d.action"), a.action],
    [t("d.model"), `${a.model} ${a.model_version}, ${a.kind}`], [t("d.score"), t("d.score.unit", { score: Number(a.score).toFixed(2) })]];
  if (a.grid) f.push([t("d.grid"), named(n.grid, a.grid)]);
  if (a.acked_by) f.push([t("d.acked"), `${a.acked_by}, ${fmtTime(a.acked_ms, true)}`]);
  if (a.resolved_by) f.push([t("d.resolved"), `${a.resolved_by}: ${a.note}`]);
  if (a.updates) f.push([t("d.duplicates"), String(a.updates)]);
  f.push([t("d.subject"), a.subject], [t("d.alert_id"), a.alert_id]);
  $("d-fields").replaceChildren(...f.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));
  $("d-facts").replaceChildren(...evidenceFacts(a.evidence).flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));
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
  if (!note) { $("d-error").textContent = t("act.note.required"); return; }
  act(`/api/v1/alerts/${encodeURIComponent(state.selected)}/resolve`, { note }).then(() => { $("resolve-note").value = ""; });
});
$("reveal-btn").addEventListener("click", async () => {
  const reason = $("reveal-reason").value.trim();
  if (!reason) { $("d-error").textContent = t("act.reason.required"); return; }
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
      if (r.status === 401) { logout(t("login.refused")); return; }
      if (!r.ok) throw new Error(r.statusText);
      $("conn").textContent = t("conn.live"); $("conn").classList.add("live");
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
            scheduleRender();
            if (state.alerts.size && state.selected === null && ev.change === "new") { /* keep the user's selection */ }
          }
          if (id !== null) state.lastId = Number(id);
        }
      }
    } catch (e) {
      if (!state.token) return;
    }
    $("conn").textContent = t("conn.reconnecting"); $("conn").classList.remove("live");
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
    const b = el("button", { type: "button", text: t("map.retry") });
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
    mapMsg(g.cells ? "" : t("map.nogrids"));
  } catch (e) {
    map.geo = null;
    mapMsg(t("map.failed", { error: e.message }), true);
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
    mapMsg(t("map.live_failed", { error: e.message }), false);
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
    mapMsg(t("map.cells_failed", { error: e.message }), false);
  } finally {
    if (map.cellsPending === key) map.cellsPending = null;
  }
  drawMap();
}

// A burst of stream events renders the queue once per frame, not once per event.
let renderQueued = false;
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => { renderQueued = false; render(); });
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
  if (!map.view) { ctx.fillStyle = "#778"; ctx.font = "14px system-ui"; ctx.fillText(t("map.nothing"), 16, 28); return; }
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
  const hint = map.tooMany ? t("map.zoom_hint", { n: map.tooMany.toLocaleString() }) : "";
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

// ---- pipeline health (analysts) ------------------------------------------

const health = { timer: null, prev: null };
const MODEL_COLOUR = ["#2d5b8a", "#d0461e", "#d99a00", "#2a7a3a", "#6a4fc4", "#5a7d9a"];

function showTab(which) {
  const h = which === "health";
  $("health-view").hidden = !h;
  document.querySelector(".layout").hidden = h;
  $("tab-alerts").classList.toggle("on", !h);
  $("tab-health").classList.toggle("on", h);
  clearInterval(health.timer);
  if (h) { loadHealth(); health.timer = setInterval(loadHealth, 5000); }
}
$("tab-alerts").addEventListener("click", () => showTab("alerts"));
$("tab-health").addEventListener("click", () => showTab("health"));

function bytes(n) {
  return n >= 1 << 30 ? (n / (1 << 30)).toFixed(2) + " GiB" : n >= 1 << 20 ? (n / (1 << 20)).toFixed(1) + " MiB" : (n / 1024).toFixed(0) + " KiB";
}

async function loadHealth() {
  let h;
  try { h = await api("/api/v1/health"); $("h-error").textContent = ""; } catch (e) { $("h-error").textContent = t("h.failed", { error: e.message }); return; }
  const prev = health.prev;
  health.prev = h;
  const dt = prev ? (h.wall_ms - prev.wall_ms) / 1000 : 0;
  const rows = Object.keys(h.events_in).map((t) => {
    const rate = prev && dt > 0 ? ((h.events_in[t] - prev.events_in[t]) / dt).toFixed(1) : "…";
    return el("tr", {}, el("td", { text: t }), el("td", { text: rate }), el("td", { text: h.events_in[t].toLocaleString() }), el("td", { text: h.rejected_rows[t].toLocaleString() }));
  });
  document.querySelector("#h-streams tbody").replaceChildren(...rows);
  const lag = h.watermark_lag_ms == null ? "—" : t("h.lag.value", { s: (h.watermark_lag_ms / 1000).toFixed(0) });
  const facts = [[t("h.latest"), h.event_ms ? fmtTime(h.event_ms, true) + (clock.simulated ? t("d.simulated") : "") : "—"],
    [t("h.watermark"), h.watermark_ms ? fmtTime(h.watermark_ms, true) : "—"], [t("h.lag"), lag],
    [t("h.late"), h.late.toLocaleString()], [t("h.refused"), h.rejected_requests.toLocaleString()],
    [t("h.store"), bytes(h.store_bytes)], [t("h.pushes"), h.pushes.toLocaleString()], [t("h.escalations"), h.escalations.toLocaleString()]];
  $("h-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));
  const reasons = h.top_reasons.map((r) => el("tr", {}, el("td", { text: r.table }), el("td", { text: r.column }), el("td", { text: r.code }), el("td", { text: r.rows.toLocaleString() })));
  document.querySelector("#h-reasons tbody").replaceChildren(...reasons);
  $("h-no-reasons").hidden = reasons.length > 0;
  drawChart(h);
  $("h-updated").textContent = t("h.updated", { t: new Date(h.wall_ms).toLocaleTimeString() });
}

// Stacked bars: new alerts per wall-clock minute, by model.
function drawChart(h) {
  const c = $("h-chart");
  const dpr = window.devicePixelRatio || 1;
  const w = c.clientWidth || 400, ht = c.clientHeight || 160;
  c.width = w * dpr; c.height = ht * dpr;
  const ctx = c.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, ht);
  const models = Object.keys(h.alerts_per_minute.models);
  const series = models.map((m) => h.alerts_per_minute.models[m]);
  const n = 60, totals = new Array(n).fill(0);
  for (const s of series) s.forEach((v, i) => { totals[i] += v; });
  const max = Math.max(1, ...totals);
  const bw = (w - 30) / n;
  ctx.fillStyle = "#778"; ctx.font = "11px system-ui"; ctx.textAlign = "right";
  ctx.fillText(String(max), 24, 12); ctx.fillText("0", 24, ht - 16);
  for (let i = 0; i < n; i++) {
    let y = ht - 18;
    series.forEach((s, k) => {
      const hgt = (s[i] / max) * (ht - 30);
      ctx.fillStyle = MODEL_COLOUR[k % MODEL_COLOUR.length];
      ctx.fillRect(30 + i * bw, y - hgt, Math.max(1, bw - 1), hgt);
      y -= hgt;
    });
  }
  ctx.textAlign = "left"; ctx.fillStyle = "#778";
  ctx.fillText(t("h.ago"), 30, ht - 4); ctx.textAlign = "right"; ctx.fillText(t("h.now"), w - 2, ht - 4);
  $("h-legend").replaceChildren(...models.flatMap((m, k) => [el("span", { class: "sw", style: `background:${MODEL_COLOUR[k % MODEL_COLOUR.length]}` }),
    `${m} ${h.alerts_total[m] || 0} `]));
  if (!models.length) $("h-legend").textContent = t("h.no_alerts");
}

// ---- start ---------------------------------------------------------------

$("login-form").addEventListener("submit", (ev) => { ev.preventDefault(); login($("login-token").value.trim()); });
$("logout-btn").addEventListener("click", () => logout());
applyLang();
const saved = sessionStorage.getItem("citywatch-token");
if (saved) login(saved);
