// The fleetflow dashboard: the live views (/v1/live/*) and the history REST routes
// (/v1/history/*), with the caller's token. No framework, no build step.
//
// Updates are batched: the full state is read once (/v1/live/vehicles, with its cursor), then
// only the changes since the cursor (/v1/live/changes) once a second; the map redraws at most
// once per animation frame and the list at most once a second, so 15,000 vehicles stay smooth.

import { FleetMap, project, STATUS_COLORS } from "./map.js";

const POLL_CHANGES_MS = 1000;
const POLL_SUMMARY_MS = 2000;
const POLL_ROUTES_MS = 3000;
const POLL_PANES_MS = 5000;
const LIST_ROWS = 200;

const $ = (id) => document.getElementById(id);

const state = {
  token: sessionStorage.getItem("fleetflow.token") || "",
  company: "",
  vehicles: new Map(), // "company/vehicle" -> view
  cursor: null,
  upto: 0,
  summary: null,
  selected: null,
  replay: null,
  timers: [],
  metrics: { applyMs: [], updateLatencyMs: [] },
  listDirty: true,
  sortedKeys: [],
  keysChanged: true,
};

const keyOf = (v) => `${v.company}/${v.vehicle}`;

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== "") q.set(k, v);
  if (state.company) q.set("company", state.company);
  const url = q.toString() ? `${path}?${q}` : path;
  let res;
  try {
    res = await fetch(url, { headers: { Authorization: `Bearer ${state.token}` } });
  } catch (e) {
    throw new ApiError(0, "fleetflow is unreachable");
  }
  if (!res.ok) {
    let message = res.statusText;
    try {
      message = (await res.json()).error || message;
    } catch (_) {
      /* not JSON */
    }
    throw new ApiError(res.status, message);
  }
  return res.json();
}

// ---- messages ---------------------------------------------------------------------------

function banner(text, kind = "error") {
  const b = $("banner");
  b.textContent = text;
  b.className = text ? kind : "hidden";
}

function report(e) {
  if (e.status === 401) {
    stop();
    showLogin("The token was refused (401): check the token fleetflow printed, or your company's token.");
  } else if (e.status === 0) {
    banner("Cannot reach fleetflow: the API is unreachable. Retrying…");
  } else if (e.status === 503) {
    banner(`The live views are unavailable (503): ${e.message}. Retrying…`);
  } else if (e.status === undefined) {
    banner(`Error: ${e.message}`); // a bug of the page's own, not of the API
  } else {
    banner(`Error ${e.status}: ${e.message}`);
  }
}

// ---- login ------------------------------------------------------------------------------

function showLogin(message = "") {
  $("login").classList.remove("hidden");
  $("app").classList.add("hidden");
  $("token-error").textContent = message;
  $("token-input").value = "";
  $("token-input").focus();
}

async function login(token) {
  state.token = token.trim();
  $("token-error").textContent = "";
  $("token-submit").disabled = true;
  try {
    const summary = await api("/v1/live/summary");
    sessionStorage.setItem("fleetflow.token", state.token);
    $("login").classList.add("hidden");
    $("app").classList.remove("hidden");
    state.summary = summary;
    renderCompanies(summary);
    renderSummary(summary);
    start();
  } catch (e) {
    if (e.status === 401) {
      $("token-error").textContent = "That token was refused (401). Check it and try again.";
    } else if (e.status === 0) {
      $("token-error").textContent = "Cannot reach fleetflow: the API is unreachable.";
    } else {
      $("token-error").textContent = `Error ${e.status}: ${e.message}`;
    }
  } finally {
    $("token-submit").disabled = false;
  }
}

// ---- polling ----------------------------------------------------------------------------

function every(ms, f) {
  let running = false;
  const tick = async () => {
    if (running) return;
    running = true;
    try {
      await f();
    } catch (e) {
      report(e);
    } finally {
      running = false;
    }
  };
  tick();
  state.timers.push(setInterval(tick, ms));
}

function stop() {
  state.timers.forEach(clearInterval);
  state.timers = [];
}

function start() {
  stop();
  state.vehicles.clear();
  state.keysChanged = true;
  map.layers.vehicles.clear();
  map.layers.routes = [];
  map.vehiclesChanged();
  state.cursor = null;
  map.fitted = false;
  every(POLL_CHANGES_MS, pollVehicles);
  every(POLL_SUMMARY_MS, async () => renderSummary(await api("/v1/live/summary")));
  every(POLL_ROUTES_MS, pollRoutes);
  every(POLL_PANES_MS, pollPanes);
  state.timers.push(setInterval(renderList, 1000));
}

async function pollVehicles() {
  const asked = performance.now();
  if (state.cursor === null) {
    const all = await api("/v1/live/vehicles");
    const t0 = performance.now();
    state.vehicles.clear();
    map.layers.vehicles.clear();
    for (const v of all.vehicles) putVehicle(keyOf(v), v);
    state.keysChanged = true;
    state.cursor = all.cursor;
    state.upto = all.upto_ms;
    applied(asked, t0);
    map.fit([...state.vehicles.values()].filter((v) => v.position).map((v) => [v.position.lat, v.position.lon]));
    return;
  }
  let changes;
  try {
    changes = await api("/v1/live/changes", { since: state.cursor });
  } catch (e) {
    if (e.status === 410) {
      state.cursor = null; // the log moved past us: read the full state again
      return;
    }
    throw e;
  }
  const t0 = performance.now();
  for (const c of changes.changes) {
    const key = `${c.company}/${c.vehicle}`;
    if (c.state) {
      if (!state.vehicles.has(key)) state.keysChanged = true;
      putVehicle(key, c.state);
    } else {
      state.vehicles.delete(key);
      map.layers.vehicles.delete(key);
      state.keysChanged = true;
    }
  }
  state.cursor = changes.cursor;
  state.upto = changes.upto_ms;
  applied(asked, t0);
}

/// One vehicle's new state, in the table and (projected once, here) on the map.
function putVehicle(key, v) {
  state.vehicles.set(key, v);
  if (v.position) {
    const [x, y] = project(v.position.lat, v.position.lon);
    map.layers.vehicles.set(key, { x, y, status: v.status });
  } else {
    map.layers.vehicles.delete(key);
  }
}

/// After a batch of vehicle updates: mark the map and the list, note the timings.
function applied(asked, t0) {
  banner("");
  map.vehiclesChanged();
  if (state.selected) {
    const at = map.layers.vehicles.get(state.selected);
    map.layers.selected = at ? { x: at.x, y: at.y } : null;
    renderPanel();
  }
  state.listDirty = true;
  const done = performance.now();
  push(state.metrics.applyMs, done - t0);
  // Update latency: from asking to the next frame with the update drawn.
  requestAnimationFrame(() => push(state.metrics.updateLatencyMs, performance.now() - asked));
  $("upto").textContent = state.upto ? `as of ${new Date(state.upto).toLocaleTimeString()}` : "";
}

function push(list, x) {
  list.push(x);
  if (list.length > 300) list.shift();
}

async function pollRoutes() {
  const routes = await api("/v1/live/routes", { bbox: map.bbox(), points: 30, limit: 1500 });
  map.layers.routes = routes.routes.map((r) => r.points.map(([lat, lon]) => project(lat, lon)));
  map.routesChanged();
  if (state.selected) {
    const [company, vehicle] = splitKey(state.selected);
    const mine = await api("/v1/live/routes", { vehicle, company });
    const r = mine.routes[0];
    map.layers.selectedRoute = r ? r.points.map(([lat, lon]) => project(lat, lon)) : null;
  } else {
    map.layers.selectedRoute = null;
  }
  state.routeCount = routes.count;
  map.dirty = true;
}

async function pollPanes() {
  const [board, alerts, inside, fences] = await Promise.all([
    api("/v1/live/leaderboard", { period: $("board-period").value, limit: 10 }),
    api("/v1/live/alerts", { limit: 30 }),
    api("/v1/live/geofences"),
    api("/v1/geofences"),
  ]);
  renderLeaderboard(board);
  renderAlerts(alerts);
  renderGeofences(fences.geofences, inside.geofences);
}

const splitKey = (key) => {
  const i = key.indexOf("/");
  return [key.slice(0, i), key.slice(i + 1)];
};

// ---- rendering --------------------------------------------------------------------------

function renderCompanies(summary) {
  const select = $("company");
  const companies = summary.companies.map((c) => c.company);
  select.innerHTML = "";
  if (companies.length > 1 || state.company) {
    select.add(new Option("all companies", ""));
  }
  for (const c of companies) select.add(new Option(c, c));
  select.value = state.company;
  select.classList.toggle("hidden", companies.length <= 1 && !state.company);
}

const COUNTS = [
  ["all", "all"],
  ["engine_on", "engine on"],
  ["engine_off", "engine off"],
  ["moving", "moving"],
  ["idle", "idle"],
  ["parked", "parked"],
  ["offline", "offline"],
];

function renderSummary(summary) {
  state.summary = summary;
  const t = summary.total;
  $("counts").innerHTML = COUNTS.map(
    ([field, label]) =>
      `<div class="count" data-count="${field}"><b>${t[field] ?? 0}</b><span>${label}</span></div>`,
  ).join("");
  $("counts").dataset.upto = summary.upto_ms;
}

function renderList() {
  if (!state.listDirty) return;
  state.listDirty = false;
  const q = $("search").value.trim().toLowerCase();
  const status = $("status-filter").value;
  const rows = [];
  let matched = 0;
  if (state.keysChanged) {
    state.sortedKeys = [...state.vehicles.keys()].sort(); // only when vehicles come or go
    state.keysChanged = false;
  }
  for (const key of state.sortedKeys) {
    const v = state.vehicles.get(key);
    if (q && !v.vehicle.toLowerCase().includes(q)) continue;
    if (status && v.status !== status) continue;
    matched += 1;
    if (rows.length < LIST_ROWS) rows.push(v);
  }
  $("list").innerHTML = rows
    .map((v) => {
      const speed = v.position ? `${v.position.speed_kmh.toFixed(0)} km/h` : "";
      const sel = keyOf(v) === state.selected ? " selected" : "";
      return `<li class="vehicle${sel}" data-key="${esc(keyOf(v))}"><i style="background:${STATUS_COLORS[v.status]}"></i><span class="id">${esc(v.vehicle)}</span><span class="st">${v.status}</span><span class="sp">${speed}</span></li>`;
    })
    .join("");
  $("list-count").textContent =
    matched > rows.length ? `${rows.length} of ${matched} shown; refine the search` : `${matched} vehicles`;
}

function renderLeaderboard(board) {
  const rows = board.boards.flatMap((b) => b.entries.map((e) => ({ ...e, company: b.company })));
  rows.sort((a, b) => b.distance_m - a.distance_m);
  $("leaderboard").innerHTML =
    rows
      .slice(0, 10)
      .map((e, i) => `<li><span>${i + 1}. ${esc(e.vehicle)}</span><b>${(e.distance_m / 1000).toFixed(1)} km</b></li>`)
      .join("") || "<li class=muted>no trips in this period yet</li>";
}

function renderAlerts(alerts) {
  $("alerts").innerHTML =
    alerts.alerts
      .slice()
      .reverse()
      .map((a) => {
        const when = new Date(a.time_ms).toLocaleTimeString();
        const value = a.value != null ? ` ${a.value}` : "";
        return `<li class="alert ${a.kind}"><span>${when}</span> <b>${a.kind}</b>${value} · ${esc(a.vehicle)}</li>`;
      })
      .join("") || "<li class=muted>no alerts</li>";
}

/// The geofences on the map (a circle's radius in world pixels at its latitude) and who is
/// inside each, busiest first.
function renderGeofences(fences, inside) {
  const who = new Map(inside.map((g) => [`${g.company}/${g.id}`, g.vehicles]));
  const perM = (lat) => 1 / (156543.03392 * Math.cos((lat * Math.PI) / 180));
  map.layers.geofences = fences.map((f) => {
    const occupied = who.has(`${f.company}/${f.id}`);
    if (f.center) {
      const [x, y] = project(f.center.lat, f.center.lon);
      return { circle: [x, y, f.radius_m * perM(f.center.lat)], occupied };
    }
    const polygons = f.geometry.type === "Polygon" ? [f.geometry.coordinates] : f.geometry.coordinates;
    const rings = polygons.flat().map((ring) => ring.map(([lon, lat]) => project(lat, lon)));
    return { rings, occupied };
  });
  map.dirty = true;
  const names = new Map(fences.map((f) => [`${f.company}/${f.id}`, f.name]));
  const rows = [...who.entries()].sort((a, b) => b[1].length - a[1].length);
  $("geofences").innerHTML =
    rows
      .slice(0, 20)
      .map(([key, vehicles]) => {
        const list = vehicles.slice(0, 5).map((v) => esc(v.vehicle)).join(", ");
        const more = vehicles.length > 5 ? ` +${vehicles.length - 5}` : "";
        return `<li><span>${esc(names.get(key) || key)}</span> <b>${vehicles.length}</b> · ${list}${more}</li>`;
      })
      .join("") || `<li class=muted>${fences.length ? "nobody inside" : "no geofences"}</li>`;
}

function select(key) {
  state.selected = key;
  state.replay = null;
  map.layers.replay = null;
  map.layers.selectedRoute = null;
  state.listDirty = true;
  renderList();
  renderPanel();
  loadTrips();
  pollRoutes().catch(report);
  const v = state.vehicles.get(key);
  if (v && v.position) {
    const [x, y] = project(v.position.lat, v.position.lon);
    map.layers.selected = { x, y };
    map.dirty = true;
  }
}

function renderPanel() {
  const panel = $("panel");
  const v = state.selected && state.vehicles.get(state.selected);
  if (!v) {
    panel.classList.add("hidden");
    return;
  }
  panel.classList.remove("hidden");
  const p = v.position;
  const trip = v.open_trip;
  $("panel-title").textContent = v.vehicle;
  $("panel-facts").innerHTML = [
    ["company", esc(v.company)],
    ["status", `${v.status} since ${new Date(v.status_since_ms).toLocaleTimeString()}`],
    ["ignition", v.ignition],
    ["position", p ? `${p.lat.toFixed(5)}, ${p.lon.toFixed(5)} at ${new Date(p.time_ms).toLocaleTimeString()}` : "none yet"],
    ["speed", p ? `${p.speed_kmh.toFixed(1)} km/h` : ""],
    ["open trip", trip ? `${(trip.distance_m / 1000).toFixed(2)} km, ${Math.round(trip.duration_s / 60)} min` : "none"],
    ["today", `${(v.today.distance_m / 1000).toFixed(2)} km, ${Math.round(v.today.driving_s / 60)} min driving, ${v.today.trips} trips`],
    ["odometer", v.odometer_km != null ? `${v.odometer_km.toFixed(1)} km` : ""],
  ]
    .map(([k, val]) => `<dt>${k}</dt><dd>${val}</dd>`)
    .join("");
}

async function loadTrips() {
  const [company, vehicle] = splitKey(state.selected);
  const day = new Date();
  day.setUTCHours(0, 0, 0, 0);
  $("trips").innerHTML = "<li class=muted>loading…</li>";
  try {
    const out = await api("/v1/history/trips", {
      vehicle,
      company,
      from: day.getTime(),
      to: day.getTime() + 2 * 86400000,
    });
    $("trips").innerHTML =
      out.trips
        .map(
          (t) =>
            `<li><button class="link" data-from="${t.start_ms}" data-to="${t.end_ms + 1}">${new Date(t.start_ms).toLocaleTimeString()}–${new Date(t.end_ms).toLocaleTimeString()}</button> ${(t.distance_m / 1000).toFixed(2)} km${t.open ? " (open)" : ""}</li>`,
        )
        .join("") || "<li class=muted>no trips recorded today</li>";
  } catch (e) {
    $("trips").innerHTML = `<li class=muted>${esc(e.message)}</li>`;
  }
}

async function replay(fromMs, toMs) {
  const [company, vehicle] = splitKey(state.selected);
  $("replay-status").textContent = "loading…";
  const out = await api("/v1/history/route", {
    vehicle,
    company,
    from: fromMs,
    to: toMs,
  });
  const coords = out.geometry.coordinates;
  const points = coords.map(([lon, lat]) => project(lat, lon));
  state.replay = { points, times: out.properties.times_ms };
  map.layers.replay = { points, cursor: 0 };
  map.fit(coords.map(([lon, lat]) => [lat, lon]), true);
  $("replay-status").textContent = `${points.length} points${out.properties.truncated ? " (truncated)" : ""}`;
  $("replay-status").dataset.points = points.length;
  // Play: the marker runs along the route in ~10 s.
  const started = performance.now();
  const step = () => {
    if (!map.layers.replay || map.layers.replay.points !== points) return;
    const f = Math.min(1, (performance.now() - started) / 10000);
    map.layers.replay.cursor = Math.floor(f * (points.length - 1));
    map.dirty = true;
    if (f < 1) requestAnimationFrame(step);
  };
  requestAnimationFrame(step);
}

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function toLocalInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
}

// ---- wiring -----------------------------------------------------------------------------

const config = await fetch("/dashboard/config.json")
  .then((r) => r.json())
  .catch(() => ({}));
const map = new FleetMap($("map"), { tiles: config.tiles || "", attribution: config.attribution || "" });
map.onSelect = select;

$("login-form").addEventListener("submit", (e) => {
  e.preventDefault();
  login($("token-input").value);
});
$("logout").addEventListener("click", () => {
  stop();
  sessionStorage.removeItem("fleetflow.token");
  state.token = "";
  state.company = "";
  showLogin();
});
$("company").addEventListener("change", (e) => {
  state.company = e.target.value;
  state.selected = null;
  renderPanel();
  start();
});
$("search").addEventListener("input", () => {
  state.listDirty = true;
  renderList();
});
$("status-filter").addEventListener("change", () => {
  state.listDirty = true;
  renderList();
});
$("board-period").addEventListener("change", () => pollPanes().catch(report));
$("list").addEventListener("click", (e) => {
  const li = e.target.closest("li.vehicle");
  if (li) select(li.dataset.key);
});
$("trips").addEventListener("click", (e) => {
  const b = e.target.closest("button[data-from]");
  if (!b) return;
  $("replay-from").value = toLocalInput(Number(b.dataset.from));
  $("replay-to").value = toLocalInput(Number(b.dataset.to) + 60000);
  replay(Number(b.dataset.from), Number(b.dataset.to)).catch(report);
});
$("replay-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const from = new Date($("replay-from").value).getTime();
  const to = new Date($("replay-to").value).getTime();
  if (!(from < to)) {
    $("replay-status").textContent = "the start must be before the end";
    return;
  }
  replay(from, to).catch((err) => {
    $("replay-status").textContent = err.message;
    report(err);
  });
});
$("panel-close").addEventListener("click", () => {
  state.selected = null;
  map.layers.selected = null;
  map.layers.selectedRoute = null;
  map.layers.replay = null;
  map.dirty = true;
  renderPanel();
});
$("replay-from").value = toLocalInput(Date.now() - 3600000);
$("replay-to").value = toLocalInput(Date.now() + 3600000);

// What tests and benchmarks read.
const pct = (xs, p) => {
  if (!xs.length) return null;
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
window.fleetflow = {
  vehicleCount: () => state.vehicles.size,
  drawnCount: () => map.layers.vehicles.size,
  positions: () => Object.fromEntries([...map.layers.vehicles].map(([k, v]) => [k, [v.x, v.y]])),
  routePoints: () => map.layers.routes.reduce((n, r) => n + r.length, 0),
  replayPoints: () => (map.layers.replay ? map.layers.replay.points.length : 0),
  geofences: () => map.layers.geofences.length,
  scale: () => map.scaleLabel,
  metrics: () => ({
    map_draws: map.stats.draws,
    draw_ms_p50: pct(map.stats.drawMs, 50),
    draw_ms_p99: pct(map.stats.drawMs, 99),
    layer_renders: map.stats.layerRenders,
    layer_render_ms_p50: pct(map.stats.layerMs, 50),
    layer_render_ms_p99: pct(map.stats.layerMs, 99),
    apply_ms_p50: pct(state.metrics.applyMs, 50),
    apply_ms_p99: pct(state.metrics.applyMs, 99),
    update_latency_ms_p50: pct(state.metrics.updateLatencyMs, 50),
    update_latency_ms_p99: pct(state.metrics.updateLatencyMs, 99),
  }),
};

if (state.token) login(state.token);
else showLogin();
