// A layer drawn pixel by pixel into an ImageData and shown as one bitmap: the fleet's dots and
// live routes. Canvas paths are the slow part of a software-rendered page (15,000 arcs took
// ~90 ms per frame in headless Chromium, 1,500 stroked routes ~110 ms); stamping precomputed
// anti-aliased discs and drawing Wu lines into a Uint32Array does the same in a few ms.
//
// Colours are blended "source over" in straight (non-premultiplied) alpha, as ImageData holds
// them; the finished bitmap is then composited over the map with drawImage.

const DOT_RADIUS = 3.5;

export class PixelLayer {
  constructor() {
    this.canvas = document.createElement("canvas");
    this.ctx = this.canvas.getContext("2d");
    this.width = 0;
    this.height = 0;
    this.image = null;
    this.pixels = null;
    this.stamps = new Map(); // "#rrggbb" -> [dx, dy, alpha][] for a dot of that colour
    this.rgbCache = new Map();
  }

  /// Clears the layer, resizing it to `width` x `height` device pixels if needed.
  begin(width, height) {
    if (width !== this.width || height !== this.height) {
      this.width = this.canvas.width = Math.max(1, width);
      this.height = this.canvas.height = Math.max(1, height);
      this.image = this.ctx.createImageData(this.width, this.height);
      this.pixels = new Uint32Array(this.image.data.buffer);
    } else {
      this.pixels.fill(0);
    }
  }

  /// Publishes what was drawn since `begin` to `this.canvas`.
  end() {
    this.ctx.putImageData(this.image, 0, 0);
  }

  /// A stamp for `dot`: a disc of radius `DOT_RADIUS * scale` in `color` ("#rrggbb").
  stamp(color, scale = 1) {
    const key = `${color}/${scale}`;
    let stamp = this.stamps.get(key);
    if (!stamp) {
      const [r, g, b] = this.rgb(color);
      const disc = discStamp(DOT_RADIUS * scale);
      const n = disc.length / 3;
      stamp = { r, g, b, dx: new Int32Array(n), dy: new Int32Array(n), a: new Int32Array(n), packed: new Uint32Array(n) };
      for (let i = 0; i < n; i++) {
        const a = (disc[3 * i + 2] * 255 + 0.5) | 0;
        stamp.dx[i] = disc[3 * i];
        stamp.dy[i] = disc[3 * i + 1];
        stamp.a[i] = a;
        stamp.packed[i] = ((a << 24) | (b << 16) | (g << 8) | r) >>> 0;
      }
      this.stamps.set(key, stamp);
    }
    return stamp;
  }

  /// A filled, anti-aliased disc (a `stamp`) centred at (x, y).
  dot(x, y, stamp) {
    const cx = Math.round(x);
    const cy = Math.round(y);
    const { dx, dy, a, packed, r, g, b } = stamp; // a: coverage 0..255
    const w = this.width;
    const h = this.height;
    const pixels = this.pixels;
    for (let i = 0; i < dx.length; i++) {
      const px = cx + dx[i];
      const py = cy + dy[i];
      if (px < 0 || py < 0 || px >= w || py >= h) continue;
      const at = py * w + px;
      // Onto an empty pixel, or fully opaque: no blending to do.
      if (pixels[at] === 0 || a[i] >= 255) pixels[at] = packed[i];
      else this.plot(at, r, g, b, a[i]);
    }
  }

  /// An anti-aliased one-pixel line (Xiaolin Wu's), `alpha` in [0, 1].
  line(x0, y0, x1, y1, color, alpha) {
    const [r, g, b] = this.rgb(color);
    const steep = Math.abs(y1 - y0) > Math.abs(x1 - x0);
    if (steep) [x0, y0, x1, y1] = [y0, x0, y1, x1];
    if (x0 > x1) [x0, y0, x1, y1] = [x1, y1, x0, y0];
    const dx = x1 - x0;
    const gradient = dx === 0 ? 1 : (y1 - y0) / dx;
    // Whole pixels along the major axis, clipped to the layer; the minor axis is clipped per
    // pixel below.
    const w = this.width;
    const major = steep ? this.height : w;
    const minor = steep ? w : this.height;
    const start = Math.max(0, Math.round(x0));
    const stop = Math.min(major - 1, Math.round(x1));
    const a255 = alpha * 255;
    let y = y0 + gradient * (start - x0);
    for (let x = start; x <= stop; x++, y += gradient) {
      const base = Math.floor(y);
      const far = (a255 * (y - base) + 0.5) | 0;
      const near = (a255 + 0.5 - far) | 0;
      if (base >= 0 && base < minor) this.plot(steep ? x * w + base : base * w + x, r, g, b, near);
      if (base + 1 >= 0 && base + 1 < minor) {
        this.plot(steep ? x * w + base + 1 : (base + 1) * w + x, r, g, b, far);
      }
    }
  }

  /// Source-over of (r, g, b) at alpha `a` (0..255) onto the pixel at index `at`.
  plot(at, r, g, b, a) {
    if (a <= 0) return;
    const pixels = this.pixels;
    const under = pixels[at];
    if (under === 0 || a >= 255) {
      pixels[at] = ((a << 24) | (b << 16) | (g << 8) | r) >>> 0;
      return;
    }
    // Straight alpha: out_a = a + ua (1 - a); out_c = (c a + uc ua (1 - a)) / out_a.
    const rest = ((under >>> 24) * (255 - a) + 127) / 255;
    const oa = a + rest;
    const or = ((r * a + (under & 0xff) * rest) / oa + 0.5) | 0;
    const og = ((g * a + ((under >>> 8) & 0xff) * rest) / oa + 0.5) | 0;
    const ob = ((b * a + ((under >>> 16) & 0xff) * rest) / oa + 0.5) | 0;
    pixels[at] = ((((oa + 0.5) | 0) << 24) | (ob << 16) | (og << 8) | or) >>> 0;
  }

  rgb(color) {
    let c = this.rgbCache.get(color);
    if (!c) {
      c = [1, 3, 5].map((i) => parseInt(color.slice(i, i + 2), 16));
      this.rgbCache.set(color, c);
    }
    return c;
  }
}

/// The pixels of a disc of radius `radius` around (0, 0) with their coverage, as a flat
/// [dx, dy, alpha, ...] list (the edge pixels partly covered, so the dot is anti-aliased).
function discStamp(radius) {
  const out = [];
  const reach = Math.ceil(radius + 0.5);
  for (let dy = -reach; dy <= reach; dy++) {
    for (let dx = -reach; dx <= reach; dx++) {
      const coverage = Math.max(0, Math.min(1, radius + 0.5 - Math.hypot(dx, dy)));
      if (coverage > 0) out.push(dx, dy, coverage);
    }
  }
  return out;
}
