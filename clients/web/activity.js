// activity.js — colours for what the hypernetwork does (paper Fig. 4): with include_hyper
// hyperd gives each character or point its activity [i, g, f, o], the size of the change in
// the main cell's recurrent weight scaling per gate.  One number per character (the sum over
// gates), placed between the smallest and the largest shown, becomes a colour: blue
// (little) to red (much), the same ramp as hyperd's own SVG pictures.

const STOPS = [[40, 70, 200], [150, 50, 160], [215, 40, 30]];

export const activityTotal = (a) => a[0] + a[1] + a[2] + a[3];

// The colour of t in [0, 1] (clamped), as "rgb(r, g, b)".
export function activityColour(t) {
  t = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0));
  const k = t < 0.5 ? 0 : 1;
  const u = t < 0.5 ? t * 2 : (t - 0.5) * 2;
  const c = STOPS[k].map((v, i) => Math.round(v + (STOPS[k + 1][i] - v) * u));
  return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
}

// Whether a model (an entry of GET /v1/models) has a hypernetwork to show.
export const isHyper = (m) => Boolean(m) && /hyper/.test(m.cell);

// A running range of totals: add(v) widens it, at(v) places v in it (0..1).
export function activityRange() {
  let lo = Infinity, hi = -Infinity;
  return {
    add(v) { if (Number.isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); } },
    at(v) { return hi > lo ? (v - lo) / (hi - lo) : 0; },
    get empty() { return !(hi >= lo); },
  };
}
