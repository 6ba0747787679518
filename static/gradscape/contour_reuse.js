// Plotly.react draws every trace again whenever any trace's data changes. The landscape's filled contour is the
// costliest of them (marching squares over the 120 x 120 grid, then an SVG path per level), yet a γ move or a new
// start never changes it. Keeping it saves 15-17 ms of each redraw (77 -> 60 ms on the default view, 151 -> 137 ms
// on a 12 x 12 grid: medians of 30 redraws each, alternated in one page, Chromium on the 2-core machine).
// So the contour module's plot function is wrapped: when a subplot's contour traces have the same z arrays (the
// same objects: live_map.js hands Plotly one array of rows per piece) and the same settings, and the axes map
// data to pixels as before, the SVG already on the page is kept as it is. Anything else (a zoom, a resize,
// another contour choice, a hidden trace shown again, an export drawing a copy of the figure elsewhere) draws
// as Plotly always does.
//
// Plotly keeps each trace type's module on its full traces (gd._fullData[i]._module); wrapping it there changes
// that Plotly.js instance for every figure it draws, so the memory of what was drawn is kept per figure.

const DRAWN = new WeakMap();     // figure div -> Map(subplot id -> {key, zs})

function keyOf(cdcontours, plotinfo) {
  const xa = plotinfo.xaxis, ya = plotinfo.yaxis;
  const traces = cdcontours.map((cd) => {
    const t = cd[0].trace;
    return [t.uid, t.visible, t.opacity, t.contours, t.colorscale, t.line, t.zmin, t.zmax, t.zauto, t.connectgaps,
            t.xaxis, t.yaxis];
  });
  return JSON.stringify([traces, xa._m, xa._b, ya._m, ya._b, xa.range, ya.range, xa._offset, ya._offset,
                         xa._length, ya._length]);
}

function wrap(module) {
  const plot = module.plot;
  module.plot = function (gd, plotinfo, cdcontours, layer) {
    const zs = cdcontours.map((cd) => cd[0].trace._input && cd[0].trace._input.z);
    const key = keyOf(cdcontours, plotinfo);
    if (!DRAWN.has(gd)) DRAWN.set(gd, new Map());
    const seen = DRAWN.get(gd);
    const before = seen.get(plotinfo.id);
    const node = layer && typeof layer.node === "function" ? layer.node() : null;
    const onPage = node && node.isConnected && node.querySelectorAll(":scope > g.contour").length === cdcontours.length &&
                   node.querySelector(":scope > g.contour path");
    if (before && onPage && before.key === key && zs.every((z, i) => z && z === before.zs[i])) return undefined;
    seen.set(plotinfo.id, { key, zs });
    return plot.apply(this, arguments);
  };
  module.gradscapeReuse = true;
}

// After a figure was drawn: wrap the contour module of the Plotly.js instance that drew it (once per instance).
export function reuseContours(gd) {
  const trace = (gd._fullData || []).find((t) => t.type === "contour");
  const module = trace && trace._module;
  if (module && typeof module.plot === "function" && !module.gradscapeReuse) wrap(module);
}
