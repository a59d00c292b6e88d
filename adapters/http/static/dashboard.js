// ReelPulse live dashboard: only the public GraphQL API (queries over HTTP, subscriptions
// over WebSocket with the graphql-transport-ws protocol). No framework, no CDN.
"use strict";

const KEY_STORAGE = "reelpulse.apiKey";
const state = { key: localStorage.getItem(KEY_STORAGE) || "", samples: [], selected: null };
// The summary subscription pushes after each commit of the stats projection only: the other
// projections commit after it, and nothing is pushed once traffic stops. So the summary is
// also read every NOW_EVERY_MS, and the ingest rate is the head's growth over the last
// RATE_WINDOW_MS: lag and rate say what is true now (0 and 0 when the platform is quiet).
const NOW_EVERY_MS = 2000;
const RATE_WINDOW_MS = 5000;

function authHeaders() {
  return state.key ? { Authorization: "Bearer " + state.key } : {};
}

async function gql(query, variables = {}, { quiet = false } = {}) {
  const r = await fetch("/graphql", {
    method: "POST",
    headers: { "content-type": "application/json", ...authHeaders() },
    body: JSON.stringify({ query, variables }),
  });
  if (r.status === 401 || r.status === 403) { if (!quiet) askForKey(); throw new Error("unauthorised"); }
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
  const rate = ingestRate(s.headPosition, performance.now());
  if (rate !== null) document.getElementById("ingest-rate").textContent = fmt.format(rate);
  const lag = Object.entries(s.projectionPositions || {}).sort()
    .map(([name, pos]) => { const l = s.headPosition - pos; return `<span class="${l > 1000 ? "bad" : ""}">${esc(name)} ${fmt.format(l)}</span>`; });
  document.getElementById("lag").innerHTML = lag.join(" · ") || "–";
}

// Events per second over the last RATE_WINDOW_MS: from the newest sample back to the last
// sample taken at or before the window's start (null until two samples span some time).
function ingestRate(head, at) {
  const samples = state.samples;
  const last = samples[samples.length - 1];
  samples.push({ head: last ? Math.max(head, last.head) : head, at });  // answers may cross
  while (samples.length > 2 && samples[1].at <= at - RATE_WINDOW_MS) samples.shift();
  const first = samples[0], newest = samples[samples.length - 1];
  return newest.at > first.at ? ((newest.head - first.head) / (newest.at - first.at)) * 1000 : null;
}

async function readSummaryNow() {
  try {
    renderSummary((await gql(SUMMARY_NOW, {}, { quiet: true })).summary);
  } catch (e) { /* shown by the connection status and the key form */ }
  setTimeout(readSummaryNow, NOW_EVERY_MS);
}

function renderTrending(kind, items) {
  const ol = document.getElementById("trend-" + kind);
  ol.innerHTML = items.map((t) => {
    const label = kind === "video" ? (t.video ? t.video.caption || t.key.slice(0, 8) : t.key.slice(0, 8)) : (kind === "hashtag" ? "#" + t.key : t.key);
    return `<li data-key="${esc(t.key)}"><div class="row"><span class="key">${esc(label)}</span>${spark(t.series)}<span class="num">${fmt.format(t.views)} views</span></div></li>`;
  }).join("");
  if (kind === "video") for (const li of ol.children) li.onclick = () => selectVideo(li.dataset.key);
}

// The queue is ordered by effectivePriority (the case's score moved by the risk model's
// prediction), shown in the column marked aria-sort; the video by caption and short id.
const order = new Intl.NumberFormat("en", { minimumFractionDigits: 2, maximumFractionDigits: 2, useGrouping: false });
function renderQueue(conn) {
  const tbody = document.querySelector("#queue tbody");
  tbody.innerHTML = conn.edges.map(({ node: c }) =>
    `<tr data-video="${esc(c.videoId)}"><td><span class="pill ${esc(c.priority)}">${esc(c.priority)}</span></td>`
    + `<td class="order">${order.format(c.effectivePriority)}</td><td>${fmt.format(c.priorityScore)}</td>`
    + `<td>${c.risk === null ? "–" : fmt.format(c.risk * 100) + "%"}</td><td>${c.reports}</td><td>${fmt.format(c.maxFlagScore)}</td><td>${fmt.format(c.reach)}</td>`
    + `<td class="video">${c.video && c.video.caption ? esc(c.video.caption) + " " : ""}<span class="muted">${esc(c.videoId.slice(0, 8))}</span></td></tr>`).join("")
    || `<tr><td colspan="8" class="muted">no open cases</td></tr>`;
  for (const tr of tbody.querySelectorAll("tr[data-video]")) tr.onclick = () => selectVideo(tr.dataset.video);
}

let detailSub = null;
async function selectVideo(id) {
  state.selected = id;
  const data = await gql(`query($id: UUID!, $key: String!) {
    video(id: $id) { id caption hashtags status stats { views uniqueViewers likes shares comments completionRate engagementRate } creator { handle }
      moderationCase { status priority reports timeline { position eventType occurredAt details } }
      sentiment(window: DAY) { comments scored positiveShare negativeShare mean } sentimentStatus { status turns } }
    trendingSeries(kind: VIDEO, key: $key, minutes: 240) { views } }`, { id, key: id });
  const v = data.video;
  const panel = document.getElementById("detail");
  if (!v) { panel.innerHTML = "<h2>Video detail</h2><p class='muted'>not found</p>"; return; }
  const timeline = v.moderationCase ? v.moderationCase.timeline.map((e) => `<li>${esc(e.occurredAt.slice(0, 19))} — <b>${esc(e.eventType)}</b></li>`).join("") : "<li class='muted'>no moderation case</li>";
  panel.innerHTML = `<h2>Video detail — ${esc(v.caption || v.id)} <span class="muted">@${esc(v.creator ? v.creator.handle : "?")} · ${esc(v.status)}</span></h2>
    <div class="cards" id="detail-stats"></div>${sentimentLine(v)}
    <div class="muted">views per minute, last 4 h (event time)</div>${spark(data.trendingSeries.map((p) => p.views), "big")}
    <h2>Moderation timeline</h2><ul class="timeline">${timeline}</ul>`;
  renderDetailStats(v.stats);
  if (detailSub) subs.unsubscribe(detailSub);
  detailSub = subs.subscribe(`subscription($id: UUID!) { videoStats(id: $id) { views uniqueViewers likes shares comments completionRate engagementRate } }`, { id }, (d) => renderDetailStats(d.videoStats));
}

function sentimentLine(v) {
  const s = v.sentiment;
  if (!s || s.scored === 0) return `<div class="sentiment-line muted" id="detail-sentiment">no scored comments in 24 h</div>`;
  const turning = v.sentimentStatus && v.sentimentStatus.status === "turning_negative" ? ` · <b class="neg">audience turning negative</b>` : "";
  return `<div class="sentiment-line" id="detail-sentiment">Comments, 24 h: ${pct(s.positiveShare)} positive · ${pct(s.negativeShare)} negative · mean ${signed(s.mean)} (${s.scored} scored)${turning}</div>`;
}

function renderDetailStats(s) {
  const el = document.getElementById("detail-stats");
  if (!el) return;
  el.innerHTML = Object.entries(s).map(([k, v]) => `<div class="card"><div class="label">${esc(k)}</div><div class="value">${fmt.format(k.endsWith("Rate") ? v * 100 : v)}${k.endsWith("Rate") ? "%" : ""}</div></div>`).join("");
}

// -- audience sentiment (SentimentProjection), read every SENTIMENT_EVERY_MS --------------------
const SENTIMENT_EVERY_MS = 5000;
const pct = (x) => fmt.format(x * 100) + "%";
const signed = (x) => (x === null || x === undefined ? "–" : (x >= 0 ? "+" : "") + x.toFixed(2));
const SENTIMENT = `query DashboardSentiment {
  platformSentiment(window: DAY) { comments scored positive negative neutral positiveShare negativeShare mean }
  sentimentRanking(kind: HASHTAG, window: DAY, first: 5) { key scored negativeShare mean }
  turningNegativeVideos(first: 5) { videoId status recentMean baseline turnedAt video { caption } } }`;

function renderSentiment(d) {
  const p = d.platformSentiment;
  const mood = document.getElementById("sentiment-mood");
  if (p.scored > 0) {
    const neu = p.neutral / p.scored;
    mood.className = "mood";
    mood.innerHTML = `<div class="bar" title="positive · neutral · negative"><span class="pos" style="width:${p.positiveShare * 100}%"></span>`
      + `<span class="neu" style="width:${neu * 100}%"></span><span class="neg" style="width:${p.negativeShare * 100}%"></span></div>`
      + `<div class="line" data-k="mood">${pct(p.positiveShare)} positive · ${pct(p.negativeShare)} negative · mean ${signed(p.mean)}</div>`
      + `<div class="muted">${fmt.format(p.comments)} comments, ${fmt.format(p.scored)} scored (English; other languages are counted, not scored)</div>`;
  }
  document.getElementById("sentiment-hashtag").innerHTML = d.sentimentRanking.map((h) =>
    `<li><div class="row"><span class="key">#${esc(h.key)}</span><span class="num">${signed(h.mean)}</span><span class="num">${pct(h.negativeShare)} neg</span></div></li>`).join("")
    || `<li class="muted">not enough comments yet</li>`;
  const ol = document.getElementById("sentiment-turning");
  ol.innerHTML = d.turningNegativeVideos.map((v) =>
    `<li data-key="${esc(v.videoId)}" class="${v.status === "turning_negative" ? "turning" : ""}"><div class="row"><span class="key">${esc(v.video && v.video.caption ? v.video.caption : v.videoId.slice(0, 8))}</span>`
    + `<span class="num" title="recent mean polarity (baseline)">${signed(v.recentMean)} (${signed(v.baseline)})</span><span class="num">${esc((v.turnedAt || "").slice(11, 16))}</span></div></li>`).join("")
    || `<li class="muted">no audience has turned</li>`;
  for (const li of ol.querySelectorAll("li[data-key]")) li.onclick = () => selectVideo(li.dataset.key);
}

async function readSentiment() {
  try { renderSentiment(await gql(SENTIMENT, {}, { quiet: true })); } catch (e) { /* shown by the status */ }
  setTimeout(readSentiment, SENTIMENT_EVERY_MS);
}

// -- wiring -------------------------------------------------------------------------------------
const SUMMARY_FIELDS = "creators videos views likes watchHours openCases headPosition projectionPositions";
const SUMMARY = `subscription { summary { ${SUMMARY_FIELDS} } }`;
const SUMMARY_NOW = `query DashboardSummary { summary { ${SUMMARY_FIELDS} } }`;
const TRENDING = (kind) => `subscription { trending(kind: ${kind}, window: HOUR, first: 10) { key views series(minutes: 60) ${kind === "VIDEO" ? "video { caption }" : ""} } }`;
const QUEUE = `subscription { moderationQueue(first: 10) { edges { node { id videoId priority effectivePriority priorityScore risk reports maxFlagScore reach video { caption } } } } }`;

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
readSummaryNow();
readSentiment();
