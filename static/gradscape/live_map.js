// Gradscape's live map: draws a figures/live.py frame with Plotly.js and animates it in the browser.
//
// Streamlit (custom component v2, no iframe) calls render() with the frame as a Uint8Array on every page run whose
// frame changed. The frame carries only the pieces this browser lacks; the others are kept in PIECES, a cache
// shared by every map of the page that outlives unmounts (switching views keeps it). A piece the cache has lost
// is reported back ("missing"), and the page sends everything again.
//
// Playback draws one marker per run on a canvas over the plot, at point t of its path trace, so the contour and
// the rest of the figure are never redrawn while it plays (Plotly's own animation redrew and lost the contour),
// and the toolbar's camera exports the map without the controls. Legend isolation (a double click) survives
// new data: visibility is carried over by trace uid.

import { reuseContours } from "./contour_reuse.js";
import { cartesianDraws, clearFailure, loadPlotly, showFailure } from "./plotly.js";
import { linesAsSvg } from "./webgl.js";

const PIECES = (window.__gradscapePieces = window.__gradscapePieces || new Map());
const DRAWS = (window.__gradscapeDraws = window.__gradscapeDraws || []);
const MAX_CACHE_BYTES = 256 * 2 ** 20;
const TYPES = { f4: Float32Array, u1: Uint8Array };
const FRAME_MS = 70;

// -- the frame -------------------------------------------------------------------------------------
function decode(u8) {
  const magic = String.fromCharCode(u8[0], u8[1], u8[2], u8[3]);
  if (magic !== "GSP1") throw new Error("not a Gradscape frame");
  const n = new DataView(u8.buffer, u8.byteOffset, u8.byteLength).getUint32(4, true);
  const header = JSON.parse(new TextDecoder().decode(u8.subarray(8, 8 + n)));
  const base = 8 + n + ((8 - ((8 + n) % 8)) % 8);
  for (const [id, dtype, count, offset] of header.pieces) {
    const T = TYPES[dtype];
    const start = base + offset;
    const copy = u8.slice(start, start + count * T.BYTES_PER_ELEMENT);   // aligned, and independent of the frame
    PIECES.set(id, { array: new T(copy.buffer), used: performance.now() });
  }
  return header;
}

function evict(keep) {
  let total = 0;
  for (const v of PIECES.values()) total += v.array.byteLength;
  if (total <= MAX_CACHE_BYTES) return;
  const old = [...PIECES.entries()].filter(([id]) => !keep.has(id)).sort((a, b) => a[1].used - b[1].used);
  for (const [id, v] of old) {
    if (total <= MAX_CACHE_BYTES / 2) break;
    PIECES.delete(id);
    total -= v.array.byteLength;
  }
}

function substitute(obj) {
  if (Array.isArray(obj)) return obj.map(substitute);
  if (obj && typeof obj === "object") {
    if ("$p" in obj) {
      const entry = PIECES.get(obj.$p);
      entry.used = performance.now();
      const a = entry.array;
      if (!("rows" in obj)) return a;
      if (!entry.rows) {        // one array of rows per piece: Plotly.react sees the same z and skips the contour
        const cols = a.length / obj.rows;
        entry.rows = [];
        for (let r = 0; r < obj.rows; r++) entry.rows.push(a.subarray(r * cols, (r + 1) * cols));
      }
      return entry.rows;
    }
    const out = {};
    for (const k in obj) out[k] = substitute(obj[k]);
    return out;
  }
  return obj;
}

// -- one map ---------------------------------------------------------------------------------------
class LiveMap {
  constructor(root) {
    this.root = root;
    root.innerHTML = "";
    this.box = document.createElement("div");
    this.box.className = "gs-live";
    Object.assign(this.box.style, { position: "relative", margin: "0 auto" });
    this.plot = document.createElement("div");
    this.plot.className = "gs-plot";
    this.canvas = document.createElement("canvas");
    this.canvas.className = "gs-overlay";
    Object.assign(this.canvas.style, { position: "absolute", left: "0", top: "0", pointerEvents: "none" });
    this.controls = document.createElement("div");
    this.controls.className = "gs-controls";
    Object.assign(this.controls.style, { display: "none", alignItems: "center", gap: "10px", padding: "4px 8px 0 50px",
                                         fontFamily: "sans-serif", fontSize: "13px" });
    this.button = document.createElement("button");
    this.button.className = "gs-play";
    this.button.type = "button";
    this.button.title = "play / pause the runs";
    Object.assign(this.button.style, { minWidth: "2.4em", cursor: "pointer" });
    this.slider = document.createElement("input");
    this.slider.type = "range";
    this.slider.className = "gs-scrub";
    this.slider.setAttribute("aria-label", "step");
    this.slider.style.flex = "1";
    this.label = document.createElement("span");
    this.label.className = "gs-step";
    Object.assign(this.label.style, { minWidth: "8.5em", fontVariantNumeric: "tabular-nums" });
    this.controls.append(this.button, this.slider, this.label);
    this.box.append(this.plot, this.canvas);
    root.append(this.box, this.controls);
    this.frame = null;
    this.playing = false;
    this.timer = null;
    this.clicks = 0;
    this.button.addEventListener("click", () => (this.playing ? this.pause() : this.play()));
    this.slider.addEventListener("input", () => { this.pause(); this.show(+this.slider.value); });
    this.setPlaying(false);
  }

  async update(u8, setTrigger) {
    const began = performance.now();
    this.setTrigger = setTrigger;
    this.reportDrawn = undefined;
    const header = decode(u8);
    this.reportDrawn = Boolean(header.meta && header.meta.reportDrawn);   // the page waits for this drawing
    const missing = header.uses.filter((id) => !PIECES.has(id));
    if (missing.length) {       // the cache lost something the page thinks we hold: ask for everything again
      setTrigger("missing", { ids: missing.slice(0, 20), n: missing.length, at: Date.now() });
      return;
    }
    evict(new Set(header.uses));
    const waited = performance.now();
    linesAsSvg(header.figure.data);     // where WebGL is emulated on the CPU, SVG lines reach the screen sooner
    const types = header.figure.data.map((t) => t.type);
    // the bundle that drew this map so far, unless this figure needs the full one (WebGL, 3-D)
    const Plotly = this.P && (this.P.gradscapeFull || cartesianDraws(types)) ? this.P : await loadPlotly(types);
    const plotlyMs = performance.now() - waited;
    this.header = header;
    const fig = substitute(header.figure);
    this.keepVisibility(fig.data);
    this.fitWidth(fig.layout);
    this.meta = header.meta || {};
    const reactStart = performance.now();
    if (this.P && this.P !== Plotly) {      // drawn by the cartesian bundle until now: the full one starts afresh
      this.P.purge(this.plot);
      this.hooked = false;
    }
    this.P = Plotly;
    await Plotly.react(this.plot, fig.data, fig.layout, header.config || {});
    reuseContours(this.plot);       // from the next redraw on, an unchanged contour is not traced again
    const reactMs = performance.now() - reactStart;
    if (!this.hooked) this.hook();
    this.setupPlayback(header.playback);
    this.root.dataset.ready = String((+this.root.dataset.ready || 0) + 1);
    // for the page benchmarks (tools/explore_bench.py): when each frame was drawn, its size, its drawing time, and
    // when the frame after it was committed (painted: a task queued from the next animation frame runs after that
    // frame's paint and commit, which for a WebGL canvas includes waiting for the GPU to draw it)
    const draw = { at: performance.now(), bytes: u8.byteLength, ms: performance.now() - began, plotlyMs, reactMs };
    DRAWS.push(draw);
    requestAnimationFrame(() => setTimeout(() => { draw.painted = performance.now(); }, 0));
    if (DRAWS.length > 500) DRAWS.splice(0, 250);
    this.tellDrawn();
  }

  // a session's first map: the page draws its sidebar and the rest once the map is on screen (or failed)
  // (a frame that failed before its header was read may have asked too: that counts as asked, once per map)
  tellDrawn() {
    if (this.reportDrawn === false || !this.setTrigger) return;
    if (this.reportDrawn === undefined && this.toldUnread) return;
    this.toldUnread = this.toldUnread || this.reportDrawn === undefined;
    this.reportDrawn = false;
    this.setTrigger("drawn", { at: Date.now() });
  }

  // A map with equal axes is only as wide as its square plot area, plus margins and the colour bar, so the colour
  // bar sits next to the map rather than at the far edge of a wide page.
  fitWidth(layout) {
    const aspect = this.header.meta && this.header.meta.aspect;
    if (!aspect) return;
    const m = layout.margin || {};
    const side = (m.l || 0) + (m.r || 0), ends = (m.t || 0) + (m.b || 0);
    const height = this.header.figure.layout.height;
    const want = Math.round((height - ends) * aspect + side);
    const room = this.root.clientWidth || want;
    layout.width = Math.max(320, Math.min(room, want));
    layout.height = layout.width < want ? Math.round((layout.width - side) / aspect + ends) : height;
    layout.autosize = false;
    this.box.style.width = layout.width + "px";
    this.controls.style.width = layout.width + "px";
    this.controls.style.margin = "0 auto";
  }

  keepVisibility(traces) {
    const old = this.plot.data;
    if (!old) return;
    const vis = new Map(old.filter((t) => t.uid).map((t) => [t.uid, t.visible]));
    for (const t of traces) {
      if (t.uid && vis.has(t.uid) && vis.get(t.uid) !== undefined) t.visible = vis.get(t.uid);
    }
  }

  hook() {                  // the plot's events (again after a purge), and the page's width once
    this.hooked = true;
    this.plot.on("plotly_afterplot", () => this.draw());
    this.plot.on("plotly_click", (ev) => {
      if (!this.meta.clickable || !ev || !ev.event || !ev.points || !ev.points.length) return;
      const p = ev.points[0];
      const xa = p.xaxis, ya = p.yaxis;
      const r = this.plot.getBoundingClientRect();
      const x = xa.p2d(ev.event.clientX - r.left - xa._offset);
      const y = ya.p2d(ev.event.clientY - r.top - ya._offset);
      if (!Number.isFinite(x) || !Number.isFinite(y)) return;
      this.clicks += 1;
      this.setTrigger("click", { x, y, n: this.clicks });
    });
    if (this.resize) return;
    this.resize = new ResizeObserver(() => {
      if (!this.header || !this.plot.layout) return;
      const lay = { ...this.plot.layout };
      this.fitWidth(lay);
      if (lay.width !== this.plot.layout.width) this.P.relayout(this.plot, { width: lay.width, height: lay.height });
      else this.draw();
    });
    this.resize.observe(this.root);
  }

  // -- playback ------------------------------------------------------------------------------------
  setupPlayback(pb) {
    this.pb = pb ? { ...pb, steps: substitute(pb.steps) } : null;
    if (!this.pb) {
      this.pause();
      this.controls.style.display = "none";
      this.frame = null;
      this.draw();
      return;
    }
    this.controls.style.display = "flex";
    const last = this.pb.P - 1;
    this.slider.min = "0";
    this.slider.max = String(last);
    this.slider.step = "1";
    const t = this.frame === null ? 0 : Math.min(this.frame, last);
    this.show(t);
  }

  show(t) {
    this.frame = t;
    this.slider.value = String(t);
    const step = this.pb ? this.pb.steps[t] : 0;
    this.label.textContent = "step " + Math.round(step).toLocaleString("en");
    this.root.dataset.frame = String(t);
    this.draw();
  }

  setPlaying(on) {
    this.playing = on;
    this.button.textContent = on ? "❚❚" : "▶";
    this.root.dataset.playing = on ? "1" : "0";
  }

  play() {
    if (!this.pb) return;
    if (this.frame >= this.pb.P - 1) this.show(0);
    this.setPlaying(true);
    const tick = () => {
      if (!this.playing) return;
      if (this.frame >= this.pb.P - 1) { this.pause(); return; }
      this.show(this.frame + 1);
      this.timer = setTimeout(tick, FRAME_MS);
    };
    this.timer = setTimeout(tick, FRAME_MS);
  }

  pause() {
    clearTimeout(this.timer);
    this.setPlaying(false);
  }

  draw() {
    const gd = this.plot, c = this.canvas;
    const W = gd.clientWidth, H = gd.clientHeight;
    const ratio = window.devicePixelRatio || 1;
    if (c.width !== Math.round(W * ratio) || c.height !== Math.round(H * ratio)) {
      c.width = Math.round(W * ratio);
      c.height = Math.round(H * ratio);
      c.style.width = W + "px";
      c.style.height = H + "px";
    }
    const ctx = c.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, W, H);
    const pb = this.pb, full = gd._fullData, lay = gd._fullLayout;
    if (!pb || this.frame === null || !full || !lay) return;
    const t = this.frame, P = pb.P, S = pb.S;
    for (const row of pb.rows) {
      const tr = full[row.trace];
      if (!tr || tr.visible !== true) continue;
      const xa = lay[tr.xaxis === "x" ? "xaxis" : "xaxis" + tr.xaxis.slice(1)];
      const ya = lay[tr.yaxis === "y" ? "yaxis" : "yaxis" + tr.yaxis.slice(1)];
      const X = gd.data[row.trace].x, Y = gd.data[row.trace].y;
      ctx.save();
      ctx.beginPath();
      ctx.rect(xa._offset, ya._offset, xa._length, ya._length);
      ctx.clip();
      ctx.strokeStyle = row.color;
      ctx.fillStyle = row.color;
      ctx.lineWidth = 2.5;
      for (let s = 0; s < S; s++) {
        const x = X[s * (P + 1) + t], y = Y[s * (P + 1) + t];
        if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
        const px = xa._offset + xa.d2p(x), py = ya._offset + ya.d2p(y);
        ctx.beginPath();
        ctx.arc(px, py, pb.size / 2, 0, 2 * Math.PI);
        if (pb.ring) ctx.stroke(); else ctx.fill();
      }
      ctx.restore();
    }
  }

  destroy() {
    this.pause();
    if (this.resize) this.resize.disconnect();
    if (this.P && this.plot) this.P.purge(this.plot);
  }
}

export function render(args) {
  const { data, parentElement, setTriggerValue } = args;
  if (!data) return () => {};
  let map = parentElement.__gradscapeMap;
  if (!map) map = parentElement.__gradscapeMap = new LiveMap(parentElement);
  // one update at a time, in order (Plotly.react is asynchronous)
  map.queue = (map.queue || Promise.resolve()).then(() => map.update(data, setTriggerValue))
    .then(() => clearFailure(parentElement), (e) => { showFailure(parentElement, e); map.tellDrawn(); });
  return () => {
    map.destroy();
    delete parentElement.__gradscapeMap;
  };
}
