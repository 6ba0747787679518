// Plotly.js for the live map and the playground: one download per page, shared through window.__gradscapePlotly.
// It comes gzipped (views/assets.py says why) and is inflated here, then run as a script.
async function fetchPlotly() {
  const url = new URL("app/static/vendor/plotly.min.js.gz", document.baseURI).href;
  const res = await fetch(url);
  if (!res.ok) throw new Error("could not load Plotly.js from " + url + " (" + res.status + ")");
  const text = await new Response(res.body.pipeThrough(new DecompressionStream("gzip"))).text();
  const src = URL.createObjectURL(new Blob([text], { type: "text/javascript" }));
  await new Promise((resolve, reject) => {
    const s = document.createElement("script");
    s.src = src;
    s.onload = resolve;
    s.onerror = () => reject(new Error("Plotly.js did not run"));
    document.head.appendChild(s);
  });
  URL.revokeObjectURL(src);
  return window.Plotly;
}

export function loadPlotly() {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!window.__gradscapePlotly) window.__gradscapePlotly = fetchPlotly();
  return window.__gradscapePlotly;
}
