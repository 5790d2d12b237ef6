// Drives the dashboard in headless Chromium (Debian's, through playwright-core) against a
// running fleetflow, and fails (exit 1) on the first expectation that does not hold.
//
//   node dashboard_check.mjs check   URL TOKEN SCREENSHOT.png
//   node dashboard_check.mjs measure URL TOKEN SECONDS
//
// check:   a wrong token is refused; vehicles appear and move; live routes draw; the counts
//          match /v1/live/summary; a past route draws; an unreachable API is reported.
// measure: with the page open on a (large) fleet, reports frame intervals, draw and update
//          times as JSON, measured in the browser.

import { chromium } from "playwright-core";

const [mode, url, token, arg] = process.argv.slice(2);
if (!["check", "measure"].includes(mode) || !url || !token) {
  console.error("usage: dashboard_check.mjs check|measure URL TOKEN SCREENSHOT|SECONDS");
  process.exit(2);
}

const step = (what) => console.log(`dashboard: ${what}`);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const errors = [];
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 860 } });
  page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && !/Failed to load resource/.test(m.text())) errors.push(`console: ${m.text()}`);
  });
  await page.goto(url);
  if (mode === "check") await check(page);
  else await measure(page, Number(arg || 30));
  if (errors.length) throw new Error(errors.join("\n"));
} catch (e) {
  console.error(`dashboard check failed: ${e.stack || e}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}

async function signIn(page, t) {
  await page.fill("#token-input", t);
  await page.click("#token-submit");
}

async function check(page) {
  await page.waitForSelector("#login-form", { state: "visible" });
  await signIn(page, "not-a-token");
  await page.waitForFunction(() => /refused/.test(document.getElementById("token-error").textContent));
  step(`wrong token: "${await page.textContent("#token-error")}"`);

  await signIn(page, token);
  await page.waitForSelector("#app", { state: "visible" });
  await page.waitForFunction(() => window.fleetflow.drawnCount() > 0, null, { timeout: 60_000 });
  step(`${await page.evaluate(() => window.fleetflow.drawnCount())} vehicles on the map`);

  const before = await page.evaluate(() => window.fleetflow.positions());
  const moved = await page.waitForFunction(
    (before) => {
      const now = window.fleetflow.positions();
      const moved = Object.keys(before).filter(
        (k) => now[k] && (now[k][0] !== before[k][0] || now[k][1] !== before[k][1]),
      );
      return moved.length > 0 && moved.length;
    },
    before,
    { timeout: 60_000 },
  );
  step(`${await moved.jsonValue()} vehicles moved on the map`);

  await page.waitForFunction(() => window.fleetflow.routePoints() > 1, null, { timeout: 60_000 });
  step(`live routes: ${await page.evaluate(() => window.fleetflow.routePoints())} points drawn`);
  const scale = await page.evaluate(() => window.fleetflow.scale());
  if (!scale) throw new Error("no scale bar");
  step(`scale bar: ${scale}`);

  // The counts shown equal the live-view API's (retried: both follow a moving fleet).
  const origin = new URL(url).origin;
  let last = "";
  for (let i = 0; ; i++) {
    const api = await fetch(`${origin}/v1/live/summary`, { headers: { Authorization: `Bearer ${token}` } }).then(
      (r) => r.json(),
    );
    const shown = await page.evaluate(() =>
      Object.fromEntries([...document.querySelectorAll("#counts .count")].map((c) => [c.dataset.count, Number(c.querySelector("b").textContent)])),
    );
    const fields = Object.keys(shown);
    const same = fields.length === 7 && fields.every((f) => shown[f] === api.total[f]);
    last = `shown ${JSON.stringify(shown)} api ${JSON.stringify(api.total)}`;
    if (same) break;
    if (i > 60) throw new Error(`the counts never matched the API: ${last}`);
    await page.waitForTimeout(1000);
  }
  step(`counts match /v1/live/summary: ${last}`);

  // A geofence around a vehicle: drawn on the map, and listed with the vehicle inside.
  const auth = { Authorization: `Bearer ${token}`, "Content-Type": "application/json" };
  const { vehicles } = await fetch(`${origin}/v1/live/vehicles`, { headers: auth }).then((r) => r.json());
  const target = vehicles.find((v) => v.position);
  const created = await fetch(`${origin}/v1/geofences`, {
    method: "POST",
    headers: auth,
    body: JSON.stringify({
      name: "check zone",
      company: target.company,
      center: { lat: target.position.lat, lon: target.position.lon },
      radius_m: 50000,
    }),
  });
  if (created.status !== 201) throw new Error(`creating a geofence: ${created.status} ${await created.text()}`);
  await page.waitForFunction(() => window.fleetflow.geofences() > 0, null, { timeout: 30_000 });
  await page.waitForFunction(() => /check zone/.test(document.getElementById("geofences").textContent), null, {
    timeout: 60_000,
  });
  step(`geofence drawn; inside: "${await page.textContent("#geofences li")}"`);

  // The vehicle panel: pick the first vehicle in the list, replay its route.
  await page.click("#list li.vehicle");
  await page.waitForSelector("#panel", { state: "visible" });
  const name = await page.textContent("#panel-title");
  await page.evaluate(() => {
    const local = (ms) => new Date(ms - new Date(ms).getTimezoneOffset() * 60000).toISOString().slice(0, 16);
    document.getElementById("replay-from").value = local(Date.now() - 2 * 3600_000);
    document.getElementById("replay-to").value = local(Date.now() + 24 * 3600_000);
  });
  for (let i = 0; ; i++) {
    await page.click("#replay-draw");
    await page.waitForFunction(() => !/loading/.test(document.getElementById("replay-status").textContent));
    const n = await page.evaluate(() => window.fleetflow.replayPoints());
    if (n > 1) {
      step(`past route of ${name}: ${await page.textContent("#replay-status")}`);
      break;
    }
    // The history is written a flush after the data arrives.
    if (i > 30) throw new Error(`no past route for ${name}: ${await page.textContent("#replay-status")}`);
    await page.waitForTimeout(1000);
  }
  await page.waitForTimeout(600);
  if (arg) {
    await page.screenshot({ path: arg });
    step(`screenshot: ${arg}`);
  }

  // The API goes away: the page says so.
  await page.route("**/v1/**", (route) => route.abort());
  await page.waitForFunction(() => /unreachable/.test(document.getElementById("banner").textContent), null, {
    timeout: 15_000,
  });
  step(`API down: "${await page.textContent("#banner")}"`);
}

async function measure(page, seconds) {
  await page.waitForSelector("#login-form", { state: "visible" });
  const signedIn = Date.now();
  await signIn(page, token);
  await page.waitForFunction(() => window.fleetflow.drawnCount() > 0, null, { timeout: 120_000 });
  const firstDrawMs = Date.now() - signedIn;
  // Frame intervals over the window, as the user would feel them (a frame per vsync when idle).
  const result = await page.evaluate(async (seconds) => {
    const intervals = [];
    let longTasks = 0;
    let longest = 0;
    try {
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) {
          longTasks += 1;
          longest = Math.max(longest, e.duration);
        }
      }).observe({ type: "longtask", buffered: false });
    } catch (_) {
      /* no long-task timing */
    }
    const start = performance.now();
    let prev = start;
    await new Promise((resolve) => {
      const frame = (t) => {
        intervals.push(t - prev);
        prev = t;
        if (t - start < seconds * 1000) requestAnimationFrame(frame);
        else resolve();
      };
      requestAnimationFrame(frame);
    });
    intervals.sort((a, b) => a - b);
    const p = (q) => intervals[Math.min(intervals.length - 1, Math.floor(q * intervals.length))];
    return {
      vehicles: window.fleetflow.vehicleCount(),
      frames: intervals.length,
      frame_interval_ms_p50: p(0.5),
      frame_interval_ms_p99: p(0.99),
      frame_interval_ms_max: intervals[intervals.length - 1],
      long_tasks: longTasks,
      longest_task_ms: longest,
      route_points: window.fleetflow.routePoints(),
      ...window.fleetflow.metrics(),
    };
  }, seconds);
  console.log(JSON.stringify({ sign_in_to_first_draw_ms: firstDrawMs, ...result }));
}
