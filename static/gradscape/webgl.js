// Whether this browser's WebGL runs in software, and the live map's lines drawn as SVG there.
//
// Without a GPU (a virtual machine, a remote desktop, Chromium started with --disable-gpu) WebGL is emulated on the
// CPU (SwiftShader, llvmpipe), and what costs is not Plotly's drawing call but putting its canvas on screen: each
// frame, the page waits for the emulated GPU to run the draw calls and reads the canvas back. Measured in Debian's
// Chromium with --disable-gpu on the 2-core machine kind, lines only, from Plotly.react to the frame committed:
// 1 152 paths of 35 points (a 12 x 12 grid of 8 methods) 0.75-0.84 s as WebGL, 0.11 s as SVG; 100 000 points
// 3.0 s against 0.27 s; 200 000 points 7.2 s against 1.1 s. Markers are another matter (20 000 of them: SVG makes
// a DOM node each, 2.7 s against 1.3 s), so only line traces change. With a GPU, WebGL stays as the figure asks.

const SOFTWARE = /swiftshader|llvmpipe|softpipe|software|basic render driver/i;
let software;

// The renderer's name (unmasked where the browser allows), or "" when there is no WebGL at all.
function rendererName() {
  const canvas = document.createElement("canvas");
  const gl = canvas.getContext("webgl") || canvas.getContext("experimental-webgl");
  if (!gl) return "";
  const info = gl.getExtension("WEBGL_debug_renderer_info");
  const name = String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER) || "");
  const lose = gl.getExtension("WEBGL_lose_context");
  if (lose) lose.loseContext();
  return name;
}

// True when WebGL is emulated on the CPU, or missing. window.__gsWebGL = "software" | "hardware", set before the
// page's scripts run, decides instead (the browser tests draw both ways on one machine).
export function softwareWebGL() {
  if (window.__gsWebGL === "software" || window.__gsWebGL === "hardware") return window.__gsWebGL === "software";
  if (software === undefined) {
    let name = "";
    try { name = rendererName(); } catch (e) { name = ""; }
    software = !name || SOFTWARE.test(name);
  }
  return software;
}

// The figure's WebGL line traces become SVG ones where WebGL is emulated (marker traces stay as they are), in place.
export function linesAsSvg(traces) {
  if (!softwareWebGL()) return;
  for (const t of traces) {
    if (t.type === "scattergl" && !String(t.mode || "").includes("markers")) t.type = "scatter";
  }
}
