// The fleet map: a Web Mercator canvas with pan, zoom and a scale bar. Works with no network
// (points on a projected canvas); draws raster tiles underneath when a tile URL is configured.
//
// Coordinates: "world" pixels at zoom 0 (x, y in [0, 256)), so a point at zoom z is at
// world * 2^z screen pixels from the world's origin.

import { PixelLayer } from "./pixel_layer.js";

const TILE = 256;
const EARTH_M_PER_PX_Z0 = 156543.03392; // metres per pixel at the equator, zoom 0

export function project(lat, lon) {
  const s = Math.sin((Math.max(-85.05, Math.min(85.05, lat)) * Math.PI) / 180);
  return [
    ((lon + 180) / 360) * TILE,
    (0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)) * TILE,
  ];
}

export function unproject(x, y) {
  const lon = (x / TILE) * 360 - 180;
  const n = Math.PI - (2 * Math.PI * y) / TILE;
  const lat = (180 / Math.PI) * Math.atan(Math.sinh(n));
  return [lat, lon];
}

export const STATUS_COLORS = {
  moving: "#1a9850",
  idle: "#f29e0b",
  parked: "#4575b4",
  offline: "#9e9e9e",
};

export class FleetMap {
  constructor(canvas, { tiles = "", attribution = "" } = {}) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.tiles = tiles;
    this.attribution = attribution;
    this.tileCache = new Map();
    this.center = project(37.5665, 126.978); // Seoul until data arrives
    this.zoom = 11;
    this.fitted = false;
    this.dirty = true;
    // vehicles: "company/vehicle" -> {x, y, status} in world pixels; routes: [[x, y], ...] each.
    // Call vehiclesChanged() / routesChanged() after changing them: each of the two pixel
    // layers (the expensive part) is re-rendered only when its data or the view changes.
    this.layers = { vehicles: new Map(), routes: [], selectedRoute: null, replay: null, selected: null };
    // geofences: [{rings: [[[x, y], ...], ...]} | {circle: [x, y, r]}, occupied], world pixels.
    this.layers.geofences = [];
    this.dotLayer = new PixelLayer();
    this.routeLayer = new PixelLayer();
    this.versions = { vehicles: 0, routes: 0 };
    this.rendered = { vehicles: "", routes: "" };
    this.onSelect = () => {};
    this.stats = { draws: 0, drawMs: [], layerRenders: 0, layerMs: [] };
    this.installControls();
    const resize = () => {
      const r = canvas.getBoundingClientRect();
      const dpr = window.devicePixelRatio || 1;
      canvas.width = Math.max(1, Math.round(r.width * dpr));
      canvas.height = Math.max(1, Math.round(r.height * dpr));
      this.dpr = dpr;
      this.dirty = true;
    };
    new ResizeObserver(resize).observe(canvas);
    resize();
    const frame = () => {
      if (this.dirty) {
        this.dirty = false;
        const t0 = performance.now();
        this.draw();
        const ms = performance.now() - t0;
        this.stats.draws += 1;
        this.stats.drawMs.push(ms);
        if (this.stats.drawMs.length > 600) this.stats.drawMs.shift();
      }
      requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  }

  vehiclesChanged() {
    this.versions.vehicles += 1;
    this.dirty = true;
  }

  routesChanged() {
    this.versions.routes += 1;
    this.dirty = true;
  }

  get width() {
    return this.canvas.width / (this.dpr || 1);
  }

  get height() {
    return this.canvas.height / (this.dpr || 1);
  }

  scale() {
    return Math.pow(2, this.zoom);
  }

  toScreen(wx, wy) {
    const k = this.scale();
    return [(wx - this.center[0]) * k + this.width / 2, (wy - this.center[1]) * k + this.height / 2];
  }

  toWorld(sx, sy) {
    const k = this.scale();
    return [(sx - this.width / 2) / k + this.center[0], (sy - this.height / 2) / k + this.center[1]];
  }

  /// The view as min_lon,min_lat,max_lon,max_lat (the API's bbox).
  bbox() {
    const [x0, y0] = this.toWorld(0, 0);
    const [x1, y1] = this.toWorld(this.width, this.height);
    const [maxLat, minLon] = unproject(x0, y0);
    const [minLat, maxLon] = unproject(x1, y1);
    const c = (v, lo, hi) => Math.max(lo, Math.min(hi, v)).toFixed(5);
    return [c(minLon, -180, 180), c(minLat, -90, 90), c(maxLon, -180, 180), c(maxLat, -90, 90)].join(",");
  }

  /// Centres and zooms on points ([lat, lon] pairs), once unless `force`.
  fit(points, force = false) {
    if ((this.fitted && !force) || points.length === 0) return;
    let [minX, minY, maxX, maxY] = [Infinity, Infinity, -Infinity, -Infinity];
    for (const [lat, lon] of points) {
      const [x, y] = project(lat, lon);
      minX = Math.min(minX, x);
      minY = Math.min(minY, y);
      maxX = Math.max(maxX, x);
      maxY = Math.max(maxY, y);
    }
    this.center = [(minX + maxX) / 2, (minY + maxY) / 2];
    const span = Math.max(maxX - minX, maxY - minY, 1e-6);
    const fitZoom = Math.log2((0.85 * Math.min(this.width, this.height)) / span);
    this.zoom = Math.max(2, Math.min(18, fitZoom));
    this.fitted = true;
    this.dirty = true;
  }

  installControls() {
    const c = this.canvas;
    let drag = null;
    c.addEventListener("pointerdown", (e) => {
      drag = { x: e.offsetX, y: e.offsetY, moved: false, center: this.center.slice() };
      c.setPointerCapture(e.pointerId);
    });
    c.addEventListener("pointermove", (e) => {
      if (!drag) return;
      const dx = e.offsetX - drag.x;
      const dy = e.offsetY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
      const k = this.scale();
      this.center = [drag.center[0] - dx / k, drag.center[1] - dy / k];
      this.dirty = true;
    });
    c.addEventListener("pointerup", (e) => {
      if (drag && !drag.moved) this.pick(e.offsetX, e.offsetY);
      drag = null;
    });
    c.addEventListener(
      "wheel",
      (e) => {
        e.preventDefault();
        const before = this.toWorld(e.offsetX, e.offsetY);
        this.zoom = Math.max(1, Math.min(20, this.zoom - e.deltaY * 0.002));
        const after = this.toWorld(e.offsetX, e.offsetY);
        this.center = [this.center[0] + before[0] - after[0], this.center[1] + before[1] - after[1]];
        this.dirty = true;
      },
      { passive: false },
    );
  }

  /// Selects the vehicle nearest a click, within 10 px.
  pick(sx, sy) {
    let best = null;
    let bestD = 100;
    for (const [key, v] of this.layers.vehicles) {
      const [x, y] = this.toScreen(v.x, v.y);
      const d = (x - sx) ** 2 + (y - sy) ** 2;
      if (d < bestD) {
        bestD = d;
        best = key;
      }
    }
    if (best) this.onSelect(best);
  }

  draw() {
    const ctx = this.ctx;
    const dpr = this.dpr || 1;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = "#eef1f4";
    ctx.fillRect(0, 0, this.width, this.height);
    if (this.tiles) this.drawTiles();
    else this.drawGraticule();
    this.drawGeofences();
    this.renderRoutes();
    ctx.drawImage(this.routeLayer.canvas, 0, 0, this.width, this.height);
    this.renderDots();
    ctx.drawImage(this.dotLayer.canvas, 0, 0, this.width, this.height);
    if (this.layers.selectedRoute) this.drawLine(this.layers.selectedRoute, "#0b6e35", 4);
    if (this.layers.replay) {
      this.drawLine(this.layers.replay.points, "#7b3294", 3);
      const at = this.layers.replay.points[this.layers.replay.cursor];
      if (at) this.drawMarker(at, "#7b3294", 7);
    }
    const w = this.width;
    const h = this.height;
    if (this.layers.selected) {
      const v = this.layers.selected;
      const [x, y] = this.toScreen(v.x, v.y);
      ctx.beginPath();
      ctx.arc(x, y, 9, 0, 2 * Math.PI);
      ctx.strokeStyle = "#111";
      ctx.lineWidth = 2;
      ctx.stroke();
    }
    this.drawScale();
    if (this.tiles && this.attribution) {
      ctx.font = "11px sans-serif";
      ctx.fillStyle = "rgba(0,0,0,0.6)";
      ctx.textAlign = "right";
      ctx.fillText(this.attribution, w - 6, h - 6);
      ctx.textAlign = "left";
    }
  }

  /// `(wx, wy) -> [x, y]` in device pixels for the current view.
  devicePixels() {
    const dpr = this.dpr || 1;
    const k = this.scale() * dpr;
    const ox = (this.width / 2 - this.center[0] * this.scale()) * dpr;
    const oy = (this.height / 2 - this.center[1] * this.scale()) * dpr;
    return [(wx) => wx * k + ox, (wy) => wy * k + oy];
  }

  /// Starts re-rendering `layer` if its data (`what`) or the view changed since it was last
  /// rendered; false if it is current.
  beginLayer(layer, what) {
    const key = `${this.versions[what]}/${this.center}/${this.zoom}/${this.canvas.width}x${this.canvas.height}`;
    if (key === this.rendered[what]) return false;
    this.rendered[what] = key;
    layer.begin(this.canvas.width, this.canvas.height);
    return true;
  }

  endLayer(layer, t0) {
    layer.end();
    this.stats.layerRenders += 1;
    this.stats.layerMs.push(performance.now() - t0);
    if (this.stats.layerMs.length > 600) this.stats.layerMs.shift();
  }

  /// The live routes of the trips in view, as thin anti-aliased lines.
  renderRoutes() {
    const t0 = performance.now();
    if (!this.beginLayer(this.routeLayer, "routes")) return;
    const [sx, sy] = this.devicePixels();
    for (const route of this.layers.routes) {
      for (let i = 1; i < route.length; i++) {
        const [ax, ay] = route[i - 1];
        const [bx, by] = route[i];
        this.routeLayer.line(sx(ax), sy(ay), sx(bx), sy(by), STATUS_COLORS.moving, 0.8);
      }
    }
    this.endLayer(this.routeLayer, t0);
  }

  /// One dot per vehicle, coloured by status.
  renderDots() {
    const t0 = performance.now();
    const layer = this.dotLayer;
    if (!this.beginLayer(layer, "vehicles")) return;
    const [sx, sy] = this.devicePixels();
    const stamps = {};
    for (const [status, color] of Object.entries(STATUS_COLORS)) stamps[status] = layer.stamp(color, this.dpr || 1);
    const w = this.canvas.width + 8;
    const h = this.canvas.height + 8;
    for (const v of this.layers.vehicles.values()) {
      const x = sx(v.x);
      const y = sy(v.y);
      if (x < -8 || y < -8 || x > w || y > h) continue;
      layer.dot(x, y, stamps[v.status] || stamps.offline);
    }
    this.endLayer(layer, t0);
  }

  /// Geofences as outlined areas, filled darker while a vehicle is inside.
  drawGeofences() {
    const ctx = this.ctx;
    for (const g of this.layers.geofences) {
      ctx.beginPath();
      if (g.circle) {
        const [x, y] = this.toScreen(g.circle[0], g.circle[1]);
        ctx.arc(x, y, Math.max(2, g.circle[2] * this.scale()), 0, 2 * Math.PI);
      } else {
        for (const ring of g.rings) {
          ring.forEach(([wx, wy], i) => {
            const [x, y] = this.toScreen(wx, wy);
            if (i === 0) ctx.moveTo(x, y);
            else ctx.lineTo(x, y);
          });
          ctx.closePath();
        }
      }
      ctx.fillStyle = g.occupied ? "rgba(117, 107, 177, 0.28)" : "rgba(117, 107, 177, 0.10)";
      ctx.fill("evenodd");
      ctx.strokeStyle = "rgba(84, 39, 143, 0.8)";
      ctx.lineWidth = 1;
      ctx.stroke();
    }
  }

  drawLine(points, color, width) {
    if (!points || points.length < 2) return;
    const ctx = this.ctx;
    ctx.beginPath();
    points.forEach(([x, y], i) => {
      const [sx, sy] = this.toScreen(x, y);
      if (i === 0) ctx.moveTo(sx, sy);
      else ctx.lineTo(sx, sy);
    });
    ctx.strokeStyle = color;
    ctx.lineWidth = width;
    ctx.lineJoin = "round";
    ctx.stroke();
  }

  drawMarker([x, y], color, r) {
    const ctx = this.ctx;
    const [sx, sy] = this.toScreen(x, y);
    ctx.beginPath();
    ctx.arc(sx, sy, r, 0, 2 * Math.PI);
    ctx.fillStyle = color;
    ctx.fill();
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = 2;
    ctx.stroke();
  }

  /// Lines every "nice" number of degrees, so the map reads as a map with no tiles.
  drawGraticule() {
    const ctx = this.ctx;
    const [x0, y0] = this.toWorld(0, 0);
    const [x1, y1] = this.toWorld(this.width, this.height);
    const [lat1, lon0] = unproject(x0, y0);
    const [lat0, lon1] = unproject(x1, y1);
    const span = Math.max(lon1 - lon0, 1e-6);
    const step = niceStep(span / 6);
    ctx.strokeStyle = "#d5dbe1";
    ctx.fillStyle = "#8a96a3";
    ctx.lineWidth = 1;
    ctx.font = "10px sans-serif";
    for (let lon = Math.ceil(lon0 / step) * step; lon <= lon1; lon += step) {
      const [sx] = this.toScreen(...project(0, lon));
      ctx.beginPath();
      ctx.moveTo(sx, 0);
      ctx.lineTo(sx, this.height);
      ctx.stroke();
      ctx.fillText(lon.toFixed(decimals(step)) + "°", sx + 2, 12);
    }
    for (let lat = Math.ceil(lat0 / step) * step; lat <= lat1; lat += step) {
      const [, sy] = this.toScreen(...project(lat, 0));
      ctx.beginPath();
      ctx.moveTo(0, sy);
      ctx.lineTo(this.width, sy);
      ctx.stroke();
      ctx.fillText(lat.toFixed(decimals(step)) + "°", 2, sy - 2);
    }
  }

  drawTiles() {
    const z = Math.max(0, Math.min(19, Math.round(this.zoom)));
    const n = Math.pow(2, z);
    const k = this.scale() / n; // screen px per tile px
    const [x0, y0] = this.toWorld(0, 0);
    const [x1, y1] = this.toWorld(this.width, this.height);
    const t = (v) => Math.floor((v / TILE) * n);
    for (let ty = Math.max(0, t(y0)); ty <= Math.min(n - 1, t(y1)); ty++) {
      for (let tx = t(x0); tx <= t(x1); tx++) {
        const wrapped = ((tx % n) + n) % n;
        const url = this.tiles
          .replace("{z}", z)
          .replace("{x}", wrapped)
          .replace("{y}", ty);
        let img = this.tileCache.get(url);
        if (!img) {
          img = new Image();
          img.onload = () => (this.dirty = true);
          img.src = url;
          this.tileCache.set(url, img);
          if (this.tileCache.size > 400) this.tileCache.delete(this.tileCache.keys().next().value);
        }
        if (img.complete && img.naturalWidth > 0) {
          const [sx, sy] = this.toScreen((tx * TILE) / n, (ty * TILE) / n);
          this.ctx.drawImage(img, sx, sy, TILE * k + 0.5, TILE * k + 0.5);
        }
      }
    }
  }

  drawScale() {
    const [, lat] = [0, unproject(...this.center)[0]];
    const mPerPx = (EARTH_M_PER_PX_Z0 / TILE) * 256 * Math.cos((lat * Math.PI) / 180) / this.scale();
    const target = 120 * mPerPx;
    const m = niceStep(target);
    const px = m / mPerPx;
    const ctx = this.ctx;
    const x = 12;
    const y = this.height - 16;
    ctx.strokeStyle = "#222";
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(x, y - 5);
    ctx.lineTo(x, y);
    ctx.lineTo(x + px, y);
    ctx.lineTo(x + px, y - 5);
    ctx.stroke();
    ctx.fillStyle = "#222";
    ctx.font = "11px sans-serif";
    ctx.fillText(m >= 1000 ? `${m / 1000} km` : `${m} m`, x + 4, y - 6);
    this.scaleLabel = m >= 1000 ? `${m / 1000} km` : `${m} m`;
  }
}

/// 1, 2 or 5 times a power of ten, at most `x`.
export function niceStep(x) {
  const p = Math.pow(10, Math.floor(Math.log10(x)));
  for (const m of [5, 2, 1]) if (m * p <= x) return m * p;
  return p;
}

function decimals(step) {
  return Math.max(0, -Math.floor(Math.log10(step)));
}
