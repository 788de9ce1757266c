// A line chart in SVG: y against x, axes with round ticks. No library: a few dozen lines draw what is needed,
// it is styled by the page's CSS, and it scales with the page.

import { svg } from "./dom.js";
import { number } from "./format.js";

const H = 320;
const PAD = { left: 64, right: 20, top: 16, bottom: 48 };

/** Round tick values covering [lo, hi], about `count` of them. */
export function ticks(lo, hi, count = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
  const out = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(Number(t.toPrecision(12)));
  return out;
}

/**
 * An SVG chart of points [[x, y], ...] with axis titles; `label` names it for screen readers. `width` (in CSS
 * pixels, about the space it gets) keeps its text readable on a phone instead of shrinking a desktop drawing.
 */
export function lineChart(points, { xTitle, yTitle, label, width = 640 }) {
  const W = width;
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) { y0 -= 0.5; y1 += 0.5; }
  const xt = ticks(x0, x1, W < 480 ? 3 : 5);
  const yt = ticks(y0, y1);
  [y0, y1] = [Math.min(y0, yt[0]), Math.max(y1, yt[yt.length - 1])];
  const sx = (x) => PAD.left + ((x - x0) / (x1 - x0)) * (W - PAD.left - PAD.right);
  const sy = (y) => H - PAD.bottom - ((y - y0) / (y1 - y0)) * (H - PAD.top - PAD.bottom);
  const path = points.map((p, i) => `${i ? "L" : "M"}${sx(p[0]).toFixed(1)} ${sy(p[1]).toFixed(1)}`).join(" ");
  return svg("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label },
    svg("title", {}, label),
    yt.map((t) => svg("g", { class: "tick" },
      svg("line", { x1: PAD.left, x2: W - PAD.right, y1: sy(t), y2: sy(t), class: "grid" }),
      svg("text", { x: PAD.left - 8, y: sy(t), class: "y-label" }, number(t)))),
    xt.map((t) => svg("g", { class: "tick" },
      svg("line", { x1: sx(t), x2: sx(t), y1: H - PAD.bottom, y2: H - PAD.bottom + 5, class: "axis" }),
      svg("text", { x: sx(t), y: H - PAD.bottom + 20, class: "x-label" }, number(t)))),
    svg("line", { x1: PAD.left, x2: W - PAD.right, y1: H - PAD.bottom, y2: H - PAD.bottom, class: "axis" }),
    svg("line", { x1: PAD.left, x2: PAD.left, y1: PAD.top, y2: H - PAD.bottom, class: "axis" }),
    svg("path", { d: path, class: "line" }),
    svg("text", { x: (PAD.left + W - PAD.right) / 2, y: H - 8, class: "axis-title" }, xTitle),
    svg("text", { x: 16, y: (PAD.top + H - PAD.bottom) / 2, class: "axis-title",
      transform: `rotate(-90 16 ${(PAD.top + H - PAD.bottom) / 2})` }, yTitle));
}
