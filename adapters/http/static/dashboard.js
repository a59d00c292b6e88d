// ReelPulse live dashboard: only the public GraphQL API (queries over HTTP, subscriptions
// over WebSocket with the graphql-transport-ws protocol). No framework, no CDN.
"use strict";

const KEY_STORAGE = "reelpulse.apiKey";
const state = { key: localStorage.getItem(KEY_STORAGE) || "", lastHead: null, lastAt: null, selected: null };

function authHeaders() {
  return state.key ? { Authorization: "Bearer " + state.key } : {};
}

async function gql(query, variables = {}) {
  const r = await fetch("/graphql", {
    method: "POST",
    headers: { "content-type": "application/json", ...authHeaders() },
    body: JSON.stringify({ query, variables }),
  });
  if (r.status === 401 || r.status === 403) { askForKey(); throw new Error("unauthorised"); }
  const body = await r.json();
  if (body.errors) throw new Error(body.errors.map((e) => e.message).join("; "));
  return body.data;
}

function askForKey() {
  const input = document.getElementById("key");
  input.focus();
  input.placeholder = "API key required";
}

// -- graphql-transport-ws client -------------------------------------------------------------
class Subscriptions {
  constructor() { this.handlers = new Map(); this.nextId = 1; this.connect(); }
  connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    this.ws = new WebSocket(`${proto}//${location.host}/graphql`, "graphql-transport-ws");
    this.ws.onopen = () => this.ws.send(JSON.stringify({ type: "connection_init", payload: authHeaders() }));
    this.ws.onmessage = (m) => this.onMessage(JSON.parse(m.data));
    this.ws.onclose = () => { setConnected(false); setTimeout(() => this.connect(), 1000); };
  }
  onMessage(msg) {
    if (msg.type === "connection_ack") {
      setConnected(true);
      for (const [id, h] of this.handlers) this.send(id, h);
    } else if (msg.type === "next" && this.handlers.has(msg.id)) {
      const h = this.handlers.get(msg.id);
      if (msg.payload.data) h.onData(msg.payload.data);
    } else if (msg.type === "ping") {
      this.ws.send(JSON.stringify({ type: "pong" }));
    }
  }
  send(id, h) {
    this.ws.send(JSON.stringify({ id, type: "subscribe", payload: { query: h.query, variables: h.variables || {} } }));
  }
  subscribe(query, variables, onData) {
    const id = String(this.nextId++);
    const h = { query, variables, onData };
    this.handlers.set(id, h);
    if (this.ws.readyState === WebSocket.OPEN) this.send(id, h);
    return id;
  }
  unsubscribe(id) {
    this.handlers.delete(id);
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ id, type: "complete" }));
  }
}

function setConnected(on) {
  document.getElementById("conn").className = "dot " + (on ? "on" : "off");
  document.getElementById("conn-text").textContent = on ? "live" : "reconnecting…";
}

// -- rendering --------------------------------------------------------------------------------
const fmt = new Intl.NumberFormat("en", { maximumFractionDigits: 1 });
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

function spark(values, cls = "spark") {
  if (!values || values.length === 0) return `<svg class="${cls}"></svg>`;
  const max = Math.max(1, ...values);
  const w = 100, h = 24;
  const pts = values.map((v, i) => `${(i / Math.max(1, values.length - 1)) * w},${h - (v / max) * (h - 2) - 1}`).join(" ");
  return `<svg class="${cls}" viewBox="0 0 ${w} ${h}" preserveAspectRatio="none"><polyline points="${pts}"/></svg>`;
}

function renderSummary(s) {
  for (const el of document.querySelectorAll("#summary [data-k]")) {
    el.textContent = fmt.format(s[el.dataset.k]);
  }
  const now = performance.now();
  if (state.lastHead !== null && now > state.lastAt) {
    const rate = ((s.headPosition - state.lastHead) / (now - state.lastAt)) * 1000;
    document.getElementById("ingest-rate").textContent = fmt.format(Math.max(0, rate));
  }
  state.lastHead = s.headPosition; state.lastAt = now;
  const lag = Object.entries(s.projectionPositions || {}).sort()
    .map(([name, pos]) => { const l = s.headPosition - pos; return `<span class="${l > 1000 ? "bad" : ""}">${esc(name)} ${fmt.format(l)}</span>`; });
  document.getElementById("lag").innerHTML = lag.join(" · ") || "–";
}

function renderTrending(kind, items) {
  const ol = document.getElementById("trend-" + kind);
  ol.innerHTML = items.map((t) => {
    const label = kind === "video" ? (t.video ? t.video.caption || t.key.slice(0, 8) : t.key.slice(0, 8)) : (kind === "hashtag" ? "#" + t.key : t.key);
    return `<li data-key="${esc(t.key)}"><div class="row"><span class="key">${esc(label)}</span>${spark(t.series)}<span class="num">${fmt.format(t.views)} views</span></div></li>`;
  }).join("");
  if (kind === "video") for (const li of ol.children) li.onclick = () => selectVideo(li.dataset.key);
}

function renderQueue(conn) {
  const tbody = document.querySelector("#queue tbody");
  tbody.innerHTML = conn.edges.map(({ node: c }) =>
    `<tr data-video="${esc(c.videoId)}"><td><span class="pill ${esc(c.priority)}">${esc(c.priority)}</span></td><td>${fmt.format(c.priorityScore)}</td><td>${c.reports}</td><td>${fmt.format(c.maxFlagScore)}</td><td>${fmt.format(c.reach)}</td><td>${esc(c.videoId.slice(0, 8))}</td></tr>`).join("")
    || `<tr><td colspan="6" class="muted">no open cases</td></tr>`;
  for (const tr of tbody.querySelectorAll("tr[data-video]")) tr.onclick = () => selectVideo(tr.dataset.video);
}

let detailSub = null;
async function selectVideo(id) {
  state.selected = id;
  const data = await gql(`query($id: UUID!, $key: String!) {
    video(id: $id) { id caption hashtags status stats { views uniqueViewers likes shares comments completionRate engagementRate } creator { handle }
      moderationCase { status priority reports timeline { position eventType occurredAt details } } }
    trendingSeries(kind: VIDEO, key: $key, minutes: 240) { views } }`, { id, key: id });
  const v = data.video;
  const panel = document.getElementById("detail");
  if (!v) { panel.innerHTML = "<h2>Video detail</h2><p class='muted'>not found</p>"; return; }
  const timeline = v.moderationCase ? v.moderationCase.timeline.map((e) => `<li>${esc(e.occurredAt.slice(0, 19))} — <b>${esc(e.eventType)}</b></li>`).join("") : "<li class='muted'>no moderation case</li>";
  panel.innerHTML = `<h2>Video detail — ${esc(v.caption || v.id)} <span class="muted">@${esc(v.creator ? v.creator.handle : "?")} · ${esc(v.status)}</span></h2>
    <div class="cards" id="detail-stats"></div>
    <div class="muted">views per minute, last 4 h (event time)</div>${spark(data.trendingSeries.map((p) => p.views), "big")}
    <h2>Moderation timeline</h2><ul class="timeline">${timeline}</ul>`;
  renderDetailStats(v.stats);
  if (detailSub) subs.unsubscribe(detailSub);
  detailSub = subs.subscribe(`subscription($id: UUID!) { videoStats(id: $id) { views uniqueViewers likes shares comments completionRate engagementRate } }`, { id }, (d) => renderDetailStats(d.videoStats));
}

function renderDetailStats(s) {
  const el = document.getElementById("detail-stats");
  if (!el) return;
  el.innerHTML = Object.entries(s).map(([k, v]) => `<div class="card"><div class="label">${esc(k)}</div><div class="value">${fmt.format(k.endsWith("Rate") ? v * 100 : v)}${k.endsWith("Rate") ? "%" : ""}</div></div>`).join("");
}

// -- wiring -------------------------------------------------------------------------------------
const SUMMARY = `subscription { summary { creators videos views likes watchHours openCases headPosition projectionPositions } }`;
const TRENDING = (kind) => `subscription { trending(kind: ${kind}, window: HOUR, first: 10) { key views series(minutes: 60) ${kind === "VIDEO" ? "video { caption }" : ""} } }`;
const QUEUE = `subscription { moderationQueue(first: 10) { edges { node { id videoId priority priorityScore reports maxFlagScore reach } } } }`;

document.getElementById("key").value = state.key;
document.getElementById("key-form").onsubmit = (e) => {
  e.preventDefault();
  state.key = document.getElementById("key").value.trim();
  localStorage.setItem(KEY_STORAGE, state.key);
  location.reload();
};

const subs = new Subscriptions();
subs.subscribe(SUMMARY, {}, (d) => renderSummary(d.summary));
for (const kind of ["VIDEO", "HASHTAG", "SOUND"]) {
  subs.subscribe(TRENDING(kind), {}, (d) => renderTrending(kind.toLowerCase(), d.trending));
}
subs.subscribe(QUEUE, {}, (d) => renderQueue(d.moderationQueue));
