// Operator dashboard (SPEC §9, §12): REST for the initial state, /ws `dashboard` for live changes.
// No framework, no build step. Everything the server sends is shown with textContent or as SVG
// attributes: no markup from data is ever interpreted.
"use strict";

const TOKEN_KEY = "dashboard-token";
const CHANNEL = "dashboard";
const STATES = ["available", "reserved", "in_trip", "maintenance"];
const STATE_NAMES = {available: "available", reserved: "reserved", in_trip: "in trip", maintenance: "maintenance"};
const RANK = {created: 0, calling: 1, called: 2, failed: 2, verified: 3, expired: 3, locked: 3};
const FEED_MAX = 200, ORDERS_SHOWN = 60, STATS_EVERY = 2000;

const $ = (id) => document.getElementById(id);
const SVG_NS = "http://www.w3.org/2000/svg";

let state = fresh();

function fresh() {
  return {
    token: sessionStorage.getItem(TOKEN_KEY), user: null,
    cars: new Map(), orders: new Map(), feed: [], samples: [], statsNow: null, instance: "",
    last: null,            // {offset, epoch} of the last `dashboard` event applied
    socket: null, retry: 250, reconnectTimer: null, statsTimer: null, carsTimer: null, expiryTimer: null,
    refetching: false, pending: [],   // live events held while a refetch replaces the state
  };
}

// ---- small DOM helpers --------------------------------------------------------------------------
function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "title") node.title = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}
function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  if (text != null) node.textContent = String(text);
  return node;
}
// A coloured mark for a car state or an order status. Colours are set through the CSSOM, which the
// page's CSP allows (it forbids inline style attributes, not element.style).
function swatch(kind, name) {
  const node = el(kind === "dot" ? "i" : kind, {class: kind === "dot" ? "dot" : "fill"});
  node.style.background = `var(--${name}, var(--other))`;
  return node;
}
const clock = (iso) => {
  const date = iso ? new Date(iso) : new Date();
  return isNaN(date) ? "" : date.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false});
};
const fmt = (value, digits = 1) => Number.isFinite(value) ? value.toFixed(digits).replace(/\.0+$/, "") : "–";
function showError(message) {
  const box = $("error");
  box.textContent = message; box.hidden = !message;
  if (message) setTimeout(() => { if (box.textContent === message) box.hidden = true; }, 6000);
}

// ---- REST ---------------------------------------------------------------------------------------
class SignedOut extends Error {}

async function api(path, options = {}) {
  const headers = {...(options.headers || {})};
  if (state.token) headers.Authorization = "Bearer " + state.token;
  const resp = await fetch(path, {...options, headers});
  if (resp.status === 401) {
    signOut("Your session has expired. Please sign in again.");
    throw new SignedOut();
  }
  const body = resp.headers.get("content-type")?.includes("json") ? await resp.json() : null;
  if (!resp.ok) {
    const detail = body && (body.detail || body.message || body.non_field_errors);
    throw new Error(`${path}: ${detail || resp.status}`);
  }
  return body;
}

async function loadCars() {
  const page = await api("/api/operator/cars?limit=500");
  state.cars = new Map(page.results.map((car) => [car.id, car]));
  renderCars();
}

// Orders and the feed come from the channel's history, so a reload shows them again (SPEC §12.2).
async function loadHistory() {
  const history = await api(`/api/realtime/history?channel=${CHANNEL}&limit=1000`);
  state.orders = new Map(); state.feed = [];
  for (const frame of history.events) apply(frame, false);
  state.last = {offset: history.offset, epoch: history.epoch};
  renderOrders(); renderFeed();
}

async function loadStats() {
  const since = state.samples.length ? state.samples[state.samples.length - 1].t : 0;
  const stats = await api(`/api/ops/stats?since=${since}`);
  state.instance = stats.instance; state.statsNow = stats.now;
  state.samples.push(...stats.samples);
  if (state.samples.length > 450) state.samples.splice(0, state.samples.length - 450);
  renderStats();
}

// Replace the state from REST (on sign-in, and when a resubscribe could not recover). Live events
// arriving meanwhile wait in `pending` and are applied afterwards unless the history had them.
async function refetch() {
  state.refetching = true; state.pending = [];
  try {
    await Promise.all([loadCars(), loadHistory()]);
  } finally {
    state.refetching = false;
  }
  const held = state.pending; state.pending = [];
  for (const frame of held) onEvent(frame);
}

// ---- live events --------------------------------------------------------------------------------
function onEvent(frame) {
  if (state.refetching) { state.pending.push(frame); return; }
  if (frame.offset !== undefined && state.last) {
    if (frame.offset <= state.last.offset) return;           // already applied (history or replay)
    state.last.offset = frame.offset;
  }
  apply(frame, true);
}

function apply(frame, live) {
  const data = frame.data || {};
  const event = frame.event || "";
  let previous = null;
  if (event === "car.updated" && data.id != null) {
    if (live) {
      previous = state.cars.get(data.id) || null;
      state.cars.set(data.id, {...previous, ...data});
      scheduleCars(true);
    }
  } else if (event.startsWith("booking.") && live) {
    scheduleCars(false);          // the booking and client columns come from /api/operator/cars
  } else if (event === "order.status" && data.id) {
    const order = state.orders.get(data.id) || {id: data.id, status: data.status, updated_at: data.updated_at, steps: []};
    if (!order.steps.some((step) => step.status === data.status)) {
      order.steps.push({status: data.status, at: data.updated_at});
      order.steps.sort((a, b) => (RANK[a.status] - RANK[b.status]) || String(a.at).localeCompare(String(b.at)));
    }
    if ((RANK[data.status] ?? 0) >= (RANK[order.status] ?? 0)) { order.status = data.status; order.updated_at = data.updated_at; }
    order.flash = live;
    state.orders.set(data.id, order);
    if (live) renderOrders();
  }
  state.feed.unshift({ts: frame.ts, ...describe(event, data, previous)});
  if (state.feed.length > FEED_MAX) state.feed.length = FEED_MAX;
  if (live) renderFeed();
}

// A car.updated carries the car only; a booking change is fetched again (debounced) for its client.
function scheduleCars(renderNow) {
  if (renderNow) { renderCars(); return; }
  clearTimeout(state.carsTimer);
  state.carsTimer = setTimeout(() => loadCars().catch(report), 150);
}

function carName(id) {
  const car = state.cars.get(id);
  return car ? car.number : `#${id}`;
}
function person(data) {
  const name = [data.name, data.surname].filter(Boolean).join(" ");
  return name || data.login || data.username || `#${data.id}`;
}

// One readable line per event: a kind tag and a sentence.
function describe(event, data, previous) {
  const [group, action] = event.split(".");
  switch (group) {
    case "car": {
      const car = `${data.number ?? "#" + data.id}${data.brand ? ` (${data.brand} ${data.model ?? ""})`.replace(" )", ")") : ""}`;
      if (previous && previous.state !== data.state) {
        return {kind: "car", text: `Car ${car}: ${STATE_NAMES[previous.state] ?? previous.state} → ${STATE_NAMES[data.state] ?? data.state}`};
      }
      return {kind: "car", text: `Car ${car} is ${STATE_NAMES[data.state] ?? data.state ?? "updated"}`};
    }
    case "booking": {
      const what = {created: "reserved", started: "trip started", finished: "trip finished",
                    cancelled: "cancelled", expired: "reservation expired"}[action] ?? action;
      let text = `Booking #${data.id}: car ${carName(data.car)} ${what} · user #${data.user}`;
      if (action === "finished" && data.cost != null) text += ` · ${data.cost} ₽`;
      return {kind: "booking", text};
    }
    case "order":
      return {kind: "order", text: `CallUp order ${String(data.id).slice(0, 8)} → ${data.status}`};
    case "client":
      return {kind: "client", text: `Client ${person(data)} ${action}${data.blocked_reason ? `: ${data.blocked_reason}` : ""}`};
    case "presence":
      return {kind: "presence", text: `${person(data)} ${action === "joined" ? "opened" : "closed"} the dashboard`};
    default: {
      const fields = Object.entries(data || {}).filter(([, v]) => v === null || typeof v !== "object").slice(0, 4);
      return {kind: group || "event", text: `${event} ${fields.map(([k, v]) => `${k}=${v}`).join(", ")}`.trim()};
    }
  }
}

// ---- rendering ----------------------------------------------------------------------------------
function renderCars() {
  const cars = [...state.cars.values()].filter((car) => !car.deleted_at).sort((a, b) => a.id - b.id);
  const counts = Object.fromEntries(STATES.map((name) => [name, 0]));
  for (const car of cars) counts[car.state] = (counts[car.state] || 0) + 1;

  const legend = $("state-counts"); legend.replaceChildren();
  for (const [name, count] of Object.entries(counts)) {
    legend.append(el("span", {"data-state": name}, swatch("dot", name), `${STATE_NAMES[name] ?? name} `,
                     el("b", {text: String(count)})));
  }
  $("kpi-cars").textContent = String(cars.length);
  $("kpi-cars-sub").textContent = `${counts.available} available · ${counts.reserved} reserved · ${counts.in_trip} in trip`;
  $("cars-count").textContent = `${cars.length} total`;

  const body = $("cars"); body.replaceChildren();
  for (const car of cars) {
    const client = car.client || null;
    body.append(el("tr", {"data-car": car.id},
      el("td", {class: "mono", text: car.number}),
      el("td", {text: `${car.brand ?? ""} ${car.model ?? ""}`.trim()}),
      el("td", {}, el("span", {class: "badge " + car.state, text: STATE_NAMES[car.state] ?? car.state})),
      el("td", {class: "num", text: car.fuel_level != null ? `${Number(car.fuel_level)} l` : ""}),
      el("td", {class: "client", text: client ? `${person(client)}${client.phone ? " · " + client.phone : ""}` : "",
                title: client ? person(client) : ""})));
  }
  renderMap(cars);
}

function renderMap(cars) {
  const map = $("map"); map.replaceChildren();
  const W = 640, H = 360, PAD = 28;
  const placed = cars.filter((car) => car.lat != null && car.lon != null && car.lat !== "" && car.lon !== "")
    .map((car) => ({car, lat: Number(car.lat), lon: Number(car.lon)}))
    .filter((p) => Number.isFinite(p.lat) && Number.isFinite(p.lon));
  if (!placed.length) {
    map.append(svg("text", {x: W / 2, y: H / 2, "text-anchor": "middle", class: "nodata"}, "No cars with a position"));
    return;
  }
  let minLat = Math.min(...placed.map((p) => p.lat)), maxLat = Math.max(...placed.map((p) => p.lat));
  let minLon = Math.min(...placed.map((p) => p.lon)), maxLon = Math.max(...placed.map((p) => p.lon));
  const k = Math.cos(((minLat + maxLat) / 2) * Math.PI / 180) || 1;    // equirectangular, true-ish shapes
  let spanX = Math.max((maxLon - minLon) * k, 0.01), spanY = Math.max(maxLat - minLat, 0.01);
  spanX *= 1.2; spanY *= 1.2;
  const scale = Math.min((W - 2 * PAD) / spanX, (H - 2 * PAD) / spanY);
  const cx = (minLon + maxLon) / 2, cy = (minLat + maxLat) / 2;
  const x = (lon) => W / 2 + (lon - cx) * k * scale;
  const y = (lat) => H / 2 - (lat - cy) * scale;

  // A light graticule with round coordinates, so distances read at a glance.
  const stepDeg = niceStep((W / scale) / k / 5);
  for (let lon = Math.ceil((cx - W / 2 / scale / k) / stepDeg) * stepDeg; x(lon) < W; lon += stepDeg) {
    map.append(svg("line", {x1: x(lon), x2: x(lon), y1: 0, y2: H, class: "grid"}));
    if (x(lon) < W - 40) map.append(svg("text", {x: x(lon) + 3, y: H - 5, class: "axis"}, lon.toFixed(3)));
  }
  const stepLat = niceStep((H / scale) / 4);
  for (let lat = Math.ceil((cy - H / 2 / scale) / stepLat) * stepLat; y(lat) > 0; lat += stepLat) {
    map.append(svg("line", {x1: 0, x2: W, y1: y(lat), y2: y(lat), class: "grid"}));
    map.append(svg("text", {x: 4, y: y(lat) - 3, class: "axis"}, lat.toFixed(3)));
  }
  const labelled = placed.length <= 40;
  for (const {car, lat, lon} of placed) {
    const group = svg("g", {"data-car": car.id, "data-state": car.state});
    const dot = svg("circle", {cx: x(lon), cy: y(lat), r: 7, class: "car " + (STATES.includes(car.state) ? car.state : "other")});
    dot.append(svg("title", {}, `${car.number} · ${STATE_NAMES[car.state] ?? car.state} · ${lat.toFixed(5)}, ${lon.toFixed(5)}`));
    group.append(dot);
    if (labelled) group.append(svg("text", {x: x(lon) + 10, y: y(lat) + 4, class: "label"}, car.number));
    map.append(group);
  }
}
function niceStep(raw) {
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 5, 10]) if (raw <= m * power) return m * power;
  return 10 * power;
}

function renderOrders() {
  const orders = [...state.orders.values()]
    .sort((a, b) => String(b.updated_at).localeCompare(String(a.updated_at)));
  const body = $("orders"); body.replaceChildren();
  for (const order of orders.slice(0, ORDERS_SHOWN)) {
    const timeline = el("div", {class: "timeline"});
    const start = order.steps.length ? Date.parse(order.steps[0].at) : NaN;
    order.steps.forEach((step, i) => {
      const after = i === 0 ? clock(step.at) : `+${fmt((Date.parse(step.at) - start) / 1000)} s`;
      timeline.append(el("span", {class: "step", title: `${step.status} at ${step.at}`},
        swatch("i", step.status), `${step.status} ${after}`));
    });
    const row = el("tr", {"data-order": order.id, "data-status": order.status, class: order.flash ? "flash" : ""},
      el("td", {class: "mono", text: order.id.slice(0, 8), title: order.id}),
      el("td", {}, el("span", {class: "badge " + order.status, text: order.status})),
      el("td", {}, timeline),
      el("td", {text: clock(order.updated_at)}));
    order.flash = false;
    body.append(row);
  }
  $("orders-empty").hidden = orders.length > 0;
  $("orders-count").textContent = orders.length ? `${orders.length} recent` : "";
  renderFunnel(orders);
}

function renderFunnel(orders) {
  const reached = (order, status) => order.steps.some((step) => step.status === status);
  const total = orders.length;
  const count = (predicate) => orders.filter(predicate).length;
  const stages = [
    ["created", "created", total, false],
    ["called", "called", count((o) => reached(o, "called") || o.status === "verified"), false],
    ["verified", "verified", count((o) => o.status === "verified"), true],
    ["failed", "failed", count((o) => o.status === "failed"), true],
    ["expired", "expired", count((o) => o.status === "expired" || o.status === "locked"), true],
    ["in progress", "calling", count((o) => RANK[o.status] < 2 || o.status === "called"), true],
  ];
  const box = $("funnel"); box.replaceChildren();
  for (const [name, color, n, outcome] of stages) {
    const share = total ? n / total : 0;
    const fill = swatch("span", color);
    fill.style.width = `${(share * 100).toFixed(1)}%`;
    box.append(el("div", {class: "stage" + (outcome ? " outcome" : ""), "data-stage": name},
      el("span", {class: "name", text: name}),
      el("div", {class: "bar"}, fill),
      el("span", {class: "count"}, String(n), el("small", {text: total ? `${Math.round(share * 100)}%` : ""}))));
  }
  const verified = stages[2][2];
  const rate = total ? `${Math.round((verified / total) * 100)}%` : "–";
  $("conversion").textContent = total ? `conversion ${rate} (${verified} of ${total})` : "no orders yet";
  $("kpi-conversion").textContent = rate;
  $("kpi-conversion-sub").textContent = total ? `${verified} verified of ${total} orders` : "no orders yet";
}

function renderFeed() {
  const list = $("feed"); list.replaceChildren();
  for (const item of state.feed) {
    list.append(el("li", {"data-kind": item.kind},
      el("time", {text: clock(item.ts)}),
      el("span", {class: "kind " + item.kind, text: item.kind}),
      el("span", {class: "text", text: item.text})));
  }
  $("feed-count").textContent = state.feed.length ? `${state.feed.length} events` : "";
}

function renderStats() {
  const samples = state.statsNow ? [...state.samples, state.statsNow] : state.samples;
  $("instance").textContent = state.instance;
  const now = state.statsNow;
  $("kpi-sockets").textContent = now ? String(now.sockets) : "–";
  const rates = [];
  for (let i = 1; i < samples.length; i++) {
    const dt = samples[i].t - samples[i - 1].t;
    if (dt > 0.2) rates.push({t: samples[i].t, v: (samples[i].events_published - samples[i - 1].events_published) / dt});
  }
  // The KPI smooths over the last ~10 s; the plot shows every interval.
  const newest = samples.length ? samples[samples.length - 1].t : 0;
  const recent = samples.filter((s) => s.t >= newest - 10);
  const span = recent.length > 1 ? recent[recent.length - 1].t - recent[0].t : 0;
  $("kpi-eps").textContent = span > 0.5
    ? fmt((recent[recent.length - 1].events_published - recent[0].events_published) / span) : "0";
  // Bookings per minute: the growth of the cumulative counter within each wall-clock minute.
  const perMinute = new Map();
  for (let i = 1; i < samples.length; i++) {
    const minute = Math.floor(samples[i].t / 60) * 60;
    perMinute.set(minute, (perMinute.get(minute) || 0) + Math.max(0, samples[i].bookings - samples[i - 1].bookings));
  }
  const lastMinute = Math.floor((now ? now.t : Date.now() / 1000) / 60) * 60;
  const bars = [];
  for (let m = lastMinute - 14 * 60; m <= lastMinute; m += 60) bars.push({t: m, v: perMinute.get(m) || 0});
  drawBars($("chart-bookings"), bars);
  drawLine($("chart-events"), rates, (v) => fmt(v));
  drawLine($("chart-sockets"), samples.map((s) => ({t: s.t, v: s.sockets})), (v) => String(Math.round(v)), true);
}

function chartFrame(node, max, label) {
  node.replaceChildren();
  for (const f of [0, 0.5, 1]) node.append(svg("line", {x1: 30, x2: 296, y1: 104 - f * 86, y2: 104 - f * 86, class: "gridline"}));
  node.append(svg("text", {x: 26, y: 107, "text-anchor": "end", class: "tick"}, "0"));
  node.append(svg("text", {x: 26, y: 21, "text-anchor": "end", class: "tick"}, label(max)));
}

function drawBars(node, bars) {
  const max = Math.max(1, ...bars.map((b) => b.v));
  chartFrame(node, max, (v) => String(v));
  const width = 266 / bars.length;
  bars.forEach((bar, i) => {
    const h = (bar.v / max) * 86;
    const rect = svg("rect", {x: 31 + i * width + 1, y: 104 - h, width: Math.max(1, width - 3), height: Math.max(h, bar.v ? 2 : 0), class: "bar"});
    rect.append(svg("title", {}, `${clock(new Date(bar.t * 1000).toISOString())}: ${bar.v}`));
    node.append(rect);
  });
  const total = bars.reduce((sum, b) => sum + b.v, 0);
  node.append(svg("text", {x: 296, y: 14, "text-anchor": "end", class: "value"},
                  `${bars[bars.length - 1].v} now · ${total} in 15 min`));
  node.dataset.total = String(total);
}

function drawLine(node, points, label, step) {
  const max = Math.max(1, ...points.map((p) => p.v));
  chartFrame(node, max, label);
  const last = points.length ? points[points.length - 1] : null;
  node.dataset.last = last ? String(last.v) : "";
  if (points.length < 2) {
    node.append(svg("text", {x: 163, y: 64, "text-anchor": "middle", class: "tick"}, "collecting samples…"));
    if (last) node.append(svg("text", {x: 296, y: 14, "text-anchor": "end", class: "value"}, label(last.v)));
    return;
  }
  const t0 = points[0].t, t1 = points[points.length - 1].t, span = Math.max(t1 - t0, 1);
  const x = (t) => 31 + ((t - t0) / span) * 265, y = (v) => 104 - (v / max) * 86;
  let d = `M${x(points[0].t)},${y(points[0].v)}`;
  for (let i = 1; i < points.length; i++) {
    if (step) d += `H${x(points[i].t)}V${y(points[i].v)}`; else d += `L${x(points[i].t)},${y(points[i].v)}`;
  }
  node.append(svg("path", {d: `${d}V104H${x(t0)}Z`, class: "area"}));
  node.append(svg("path", {d, class: "line"}));
  node.append(svg("text", {x: 296, y: 14, "text-anchor": "end", class: "value"}, label(last.v)));
}

// ---- the socket (SPEC §8.1, §12.2) --------------------------------------------------------------
function setStatus(text, cls) {
  const pill = $("status");
  pill.textContent = text; pill.className = "pill " + (cls || "");
}

function connect() {
  if (!state.token) return;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(`${scheme}//${location.host}/ws`);    // the token goes in a frame, never the URL
  state.socket = socket;
  setStatus("connecting", "connecting");
  socket.onopen = () => socket.send(JSON.stringify({type: "auth", token: state.token, id: 1}));
  socket.onmessage = (message) => {
    const frame = JSON.parse(message.data);
    if (frame.type === "authenticated") {
      state.retry = 250;
      const pill = $("status");
      pill.dataset.connects = String(Number(pill.dataset.connects) + 1);
      // Resubscribe from the last offset we hold: missed events are replayed before live ones.
      const since = state.last && state.last.epoch ? {since: {offset: state.last.offset, epoch: state.last.epoch}} : {};
      socket.send(JSON.stringify({type: "subscribe", channel: CHANNEL, id: 2, ...since}));
    } else if (frame.type === "subscribed" && frame.channel === CHANNEL) {
      setStatus("live", "live");
      const pill = $("status");
      if (frame.recovered === false) {
        pill.dataset.recovered = "false";
        pill.dataset.refetches = String(Number(pill.dataset.refetches) + 1);
        refetch().catch(report);         // history lost or epoch changed: ask REST for the truth
      } else {
        if (frame.recovered === true) pill.dataset.recovered = "true";
        if (!state.last || state.last.epoch !== frame.epoch) state.last = {offset: frame.offset, epoch: frame.epoch};
      }
    } else if (frame.type === "event" && frame.channel === CHANNEL) {
      onEvent(frame);
    } else if (frame.type === "error") {
      showError(`${frame.code}${frame.message ? ": " + frame.message : ""}`);
    }
  };
  socket.onclose = (event) => {
    if (state.socket !== socket) return;
    setStatus("offline", "");
    if (event.code === 4001) { signOut("Your session has expired. Please sign in again."); return; }
    const delay = state.retry + Math.random() * state.retry;          // backoff with jitter
    state.retry = Math.min(state.retry * 2, 10000);
    state.reconnectTimer = setTimeout(connect, delay);
  };
}

// ---- signing in and out -------------------------------------------------------------------------
function report(error) {
  if (!(error instanceof SignedOut)) showError(String(error.message || error));
}

// The server keeps honouring a token for a short leeway past its `exp` (SPEC §3.1), which is for
// clock skew, not for screens: the page leaves at `exp` itself, so no stale table stays up.
function tokenExpiry(token) {
  try {
    const payload = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
    return Number.isFinite(payload.exp) ? payload.exp * 1000 : null;
  } catch { return null; }
}

function watchExpiry() {
  clearTimeout(state.expiryTimer);
  const at = tokenExpiry(state.token);
  if (at === null) return;
  // setTimeout's delay is a 32-bit int: a far-off expiry re-arms instead of firing at once.
  const delay = Math.min(Math.max(at - Date.now(), 0), 2 ** 31 - 1);
  state.expiryTimer = setTimeout(() => {
    if (Date.now() >= at) signOut("Your session has expired. Please sign in again.");
    else watchExpiry();
  }, delay);
}

async function start() {
  try {
    state.user = await api("/api/auth/me/");
  } catch (error) {
    report(error); if (!(error instanceof SignedOut)) showSignIn(); return;
  }
  showApp();
  watchExpiry();
  try {
    await Promise.all([loadCars(), loadHistory(), loadStats()]);
  } catch (error) {
    report(error);
    if (!state.token) return;
  }
  connect();
  state.statsTimer = setInterval(() => loadStats().catch(report), STATS_EVERY);
}

function showApp() {
  const user = state.user;
  const name = [user.name, user.surname].filter(Boolean).join(" ") || user.login;
  $("who-name").textContent = name;
  $("who-login").textContent = user.login;
  $("who-initials").textContent = name.split(/\s+/).map((part) => part[0]).join("").slice(0, 2).toUpperCase();
  $("who").hidden = false; $("app").hidden = false; $("signin-view").hidden = true;
}

function showSignIn(message, problem = true) {
  $("app").hidden = true; $("who").hidden = true; $("signin-view").hidden = false;
  $("signin-error").textContent = message || "";
  $("signin-error").className = problem ? "error" : "note";
  setStatus("offline", "");
}

// Back to the sign-in form with nothing of the old session left on screen.
function signOut(message, problem = true) {
  const old = state;
  clearTimeout(old.reconnectTimer); clearInterval(old.statsTimer); clearTimeout(old.carsTimer);
  clearTimeout(old.expiryTimer);
  if (old.socket) { old.socket.onclose = null; old.socket.close(); }
  sessionStorage.removeItem(TOKEN_KEY);
  state = fresh();
  for (const id of ["cars", "orders", "feed", "funnel", "state-counts", "map", "chart-bookings", "chart-events", "chart-sockets"]) {
    $(id).replaceChildren();
  }
  for (const id of ["kpi-cars", "kpi-conversion", "kpi-eps", "kpi-sockets"]) $(id).textContent = "–";
  showSignIn(message, problem);
}

document.addEventListener("DOMContentLoaded", () => {
  $("signin").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("signin-error").textContent = ""; $("signin-error").className = "error";
    $("signin-button").disabled = true;
    try {
      const resp = await fetch("/api/auth/login/", {method: "POST", headers: {"Content-Type": "application/json"},
        body: JSON.stringify({login: $("login").value, password: $("password").value})});
      const body = await resp.json().catch(() => ({}));
      if (!resp.ok) {
        const detail = body.detail || (body.non_field_errors || [])[0] || Object.values(body)[0] || resp.status;
        $("signin-error").textContent = String(detail);
        return;
      }
      sessionStorage.setItem(TOKEN_KEY, body.access);
      state.token = body.access; $("password").value = "";
      await start();
    } finally {
      $("signin-button").disabled = false;
    }
  });
  $("signout").addEventListener("click", async () => {
    try {
      // Revokes this token on every instance (its sockets close with 4001); then forget it here.
      await fetch("/auth/logout", {method: "POST", headers: {Authorization: "Bearer " + state.token}});
    } finally {
      signOut("Signed out.", false);
    }
  });
  if (state.token) start(); else showSignIn();
});
