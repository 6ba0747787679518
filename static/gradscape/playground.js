// Gradscape's aggregator playground: a Plotly chart whose task-gradient arrows can be dragged by their heads.
//
// Streamlit (custom component v2, no iframe) calls render() with {figure, config} as JSON text. The task gradients
// are annotations anchored at the origin whose tail (ax, ay), where Plotly puts the label, is the vector's tip (the
// arrowhead is drawn there: arrowside "start"). Plotly's `edits.annotationTail` lets the user drag the label, and
// the relayout that follows ("annotations[k].ax", "annotations[k].ay") goes back to the page as a "drag" trigger
// {k, x, y, n}. The page moves the vector, recomputes every method's first step and sends a new figure.
// (st.plotly_chart reports selections only, never relayouts: a drag could not reach Python through it.)

import { clearFailure, loadPlotly, showFailure } from "./plotly.js";     // shared with the live map: one download per page

class Playground {
  constructor(root) {
    this.root = root;
    this.plot = document.createElement("div");
    this.plot.className = "gs-playground-plot";
    root.classList.add("gs-playground");
    root.append(this.plot);
    this.drags = 0;
  }

  async update(text, setTrigger) {
    this.setTrigger = setTrigger;
    const { figure, config } = JSON.parse(text);
    const Plotly = (this.P = await loadPlotly());
    await Plotly.react(this.plot, figure.data, figure.layout, config || {});
    if (!this.hooked) {
      this.hooked = true;
      this.plot.on("plotly_relayout", (ev) => this.relayout(ev));
    }
    this.root.dataset.ready = String((+this.root.dataset.ready || 0) + 1);
  }

  relayout(ev) {
    if (!ev) return;
    for (const key of Object.keys(ev)) {
      const m = /^annotations\[(\d+)\]\.ax$/.exec(key);
      if (!m) continue;
      const k = +m[1];
      const x = ev[key], y = ev[`annotations[${k}].ay`];
      if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
      this.drags += 1;
      this.setTrigger("drag", { k, x, y, n: this.drags });
      return;
    }
  }

  destroy() {
    if (this.P && this.plot) this.P.purge(this.plot);
  }
}

export function render(args) {
  const { data, parentElement, setTriggerValue } = args;
  let pg = parentElement.__gradscapePlayground;
  if (!pg) pg = parentElement.__gradscapePlayground = new Playground(parentElement);
  if (data) {
    pg.queue = (pg.queue || Promise.resolve()).then(() => pg.update(data, setTriggerValue))
      .then(() => clearFailure(parentElement), (e) => showFailure(parentElement, e));
  }
  return () => {
    pg.destroy();
    delete parentElement.__gradscapePlayground;
  };
}
