// Plotly.js for the live map and the playground, loaded once per page and shared.
//
// Two bundles (views/assets.py): the cartesian one (contour, scatter, heatmap, ...; 0.5 MB gzipped) draws every
// figure without WebGL or 3-D, the full one (1.5 MB) the rest. A figure asks for what its trace types need; the
// cartesian bundle is tried first and the full one taken when it is missing (another plotly.js installed). Each
// bundle is a script that sets window.Plotly, so they run one after the other and each instance is kept as
// it was when its script ran. They are kept gzipped on disk; the app's server (views/static_cache.py) sends
// them under their plain names as Content-Encoding: gzip, so a plain <script> tag loads them and the browser
// compiles them off the main thread while they arrive. Behind a server that does not (the .js name is a 404),
// the .gz file is fetched and inflated here instead.

const CARTESIAN_TYPES = new Set(["bar", "box", "contour", "heatmap", "histogram", "histogram2d", "histogram2dcontour",
                                 "image", "pie", "scatter", "scatterternary", "violin"]);
const FULL = "app/static/vendor/plotly.min.js.gz";
const CARTESIAN = "app/static/vendor/plotly-cartesian.min.js.gz";
const STATE = (window.__gradscapePlotlyBundles = window.__gradscapePlotlyBundles || { loaded: new Map(), queue: Promise.resolve() });

function runScript(src) {
  return new Promise((resolve, reject) => {
    const s = document.createElement("script");
    s.src = src;
    s.onload = resolve;
    s.onerror = () => { s.remove(); reject(new Error("Plotly.js did not load from " + src)); };
    document.head.appendChild(s);
  });
}

async function inflateAndRun(url) {
  const res = await fetch(url).catch((e) => { throw new Error("Plotly.js could not be fetched: " + e.message); });
  if (!res.ok) throw new Error("could not load Plotly.js from " + url + " (" + res.status + ")");
  const text = await new Response(res.body.pipeThrough(new DecompressionStream("gzip"))).text();
  const src = URL.createObjectURL(new Blob([text], { type: "text/javascript" }));
  try {
    await runScript(src);
  } finally {
    URL.revokeObjectURL(src);
  }
}

async function fetchAndRun(path) {
  const url = new URL(path, document.baseURI).href;
  try {
    await runScript(url.replace(/\.gz$/, ""));
  } catch (e) {
    await inflateAndRun(url);
  }
  const Plotly = window.Plotly;
  Plotly.gradscapeFull = path === FULL;
  return Plotly;
}

function load(path) {
  if (!STATE.loaded.has(path)) {
    const p = STATE.queue.then(() => fetchAndRun(path));
    STATE.queue = p.catch(() => undefined);
    STATE.loaded.set(path, p);
  }
  return STATE.loaded.get(path);
}

// Whether the cartesian bundle can draw traces of these types (a trace without a type is a scatter).
export function cartesianDraws(types) {
  return types.every((t) => CARTESIAN_TYPES.has(t || "scatter"));
}

// The Plotly.js instance for a figure whose traces have these types (none given: the cartesian one will do).
export function loadPlotly(types = []) {
  if (!cartesianDraws(types)) return load(FULL);
  return load(CARTESIAN).catch(() => load(FULL));
}

// A figure that cannot be drawn says so where it would have been (and in data-error, for the tests), instead of
// leaving a blank space; the next frame that draws takes the message away.
export function showFailure(el, e) {
  const reason = String(e && e.message ? e.message : e);
  el.dataset.error = reason;
  let box = el.querySelector(":scope > .gs-failure");
  if (!box) {
    box = document.createElement("div");
    box.className = "gs-failure";
    box.setAttribute("role", "alert");
    Object.assign(box.style, { padding: "12px 16px", margin: "8px 0", borderRadius: "6px", fontFamily: "sans-serif",
                               fontSize: "14px", background: "rgba(255, 43, 43, 0.09)", color: "rgb(125, 53, 59)" });
    el.prepend(box);
  }
  box.textContent = `This figure could not be drawn (${reason}). Reload the page to try again.`;
  console.error("Gradscape:", e);
}

export function clearFailure(el) {
  delete el.dataset.error;
  const box = el.querySelector(":scope > .gs-failure");
  if (box) box.remove();
}
