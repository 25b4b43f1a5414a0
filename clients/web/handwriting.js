// handwriting.js — the Handwriting panel: a drawing streamed point by point and drawn on a
// canvas as it arrives (x, y absolute with y down; eos lifts the pen after its point),
// scaled to fit; the same points saved as an SVG document.

import { activityColour, activityRange, activityTotal, isHyper } from './activity.js';
import { stream } from './api.js';

const $ = (id) => document.getElementById(id);

const el = {
  model: $('hw-model'),
  bias: $('hw-bias'),
  temperature: $('hw-temperature'),
  points: $('hw-points'),
  seed: $('hw-seed'),
  sample: $('hw-sample'),
  stop: $('hw-stop'),
  download: $('hw-download'),
  error: $('hw-error'),
  canvas: $('hw-canvas'),
  empty: $('hw-empty'),
  status: $('hw-status'),
  hyper: $('hw-hyper'),
};

const models = new Map();       // name → the model's entry in GET /v1/models

// The smallest extent the view is scaled for (model units), so that the first few points
// of a drawing are not blown up to fill the canvas.
const MIN_WIDTH = 400;
const MIN_HEIGHT = 90;
const INK = '#1d2352';
const PEN = '#c2364e';

let strokes = [];               // [[[x, y], ...], ...]; [x, y, activity] with include_hyper
let range = activityRange();    // of the drawing's activities (empty: not coloured)
let penUp = true;               // the next point starts a new stroke
let running = null;             // AbortController
let drawn = null;               // the final event of the last drawing
let frame = 0;                  // a pending requestAnimationFrame

function showError(message) {
  el.error.textContent = message;
  el.error.hidden = !message;
}

function addPoint(p) {
  if (penUp) strokes.push([]);
  if (Array.isArray(p.hyper)) {
    const a = activityTotal(p.hyper);
    strokes[strokes.length - 1].push([p.x, p.y, a]);
    range.add(a);
  } else {
    strokes[strokes.length - 1].push([p.x, p.y]);
  }
  penUp = Boolean(p.eos);
  if (!frame) frame = requestAnimationFrame(draw);
}

function bounds() {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const s of strokes) {
    for (const [x, y] of s) {
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
    }
  }
  return { x0, y0, x1, y1 };
}

// Draws every stroke so far, scaled to fit: left-aligned (writing grows to the right) and
// centred vertically.
function draw() {
  frame = 0;
  const c = el.canvas;
  const dpr = window.devicePixelRatio || 1;
  const w = c.clientWidth, h = c.clientHeight;
  if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
    c.width = Math.round(w * dpr);
    c.height = Math.round(h * dpr);
  }
  const ctx = c.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  el.empty.hidden = strokes.length > 0 || Boolean(running);
  if (strokes.length === 0) return;
  const b = bounds();
  const pad = 24;
  const bw = b.x1 - b.x0, bh = b.y1 - b.y0;
  const s = Math.min((w - 2 * pad) / Math.max(bw, MIN_WIDTH), (h - 2 * pad) / Math.max(bh, MIN_HEIGHT));
  const ox = pad - b.x0 * s;
  const oy = h / 2 - ((b.y0 + b.y1) / 2) * s;
  ctx.lineCap = 'round';
  ctx.lineJoin = 'round';
  ctx.lineWidth = Math.max(1.6, Math.min(3, s * 2.5));
  ctx.strokeStyle = INK;
  ctx.fillStyle = INK;
  for (const stroke of range.empty ? [] : strokes) { // each point's segment in its own colour
    stroke.forEach(([x, y, a], i) => {
      const [px, py] = stroke[i > 0 ? i - 1 : 0];
      ctx.strokeStyle = activityColour(range.at(a));
      ctx.beginPath();
      ctx.moveTo(ox + px * s, oy + py * s);
      ctx.lineTo(ox + x * s + (i > 0 ? 0 : 0.01), oy + y * s);
      ctx.stroke();
    });
  }
  for (const stroke of range.empty ? strokes : []) {
    ctx.beginPath();
    stroke.forEach(([x, y], i) => (i === 0 ? ctx.moveTo(ox + x * s, oy + y * s) : ctx.lineTo(ox + x * s, oy + y * s)));
    if (stroke.length === 1) { // a dot
      const [x, y] = stroke[0];
      ctx.arc(ox + x * s, oy + y * s, ctx.lineWidth / 2, 0, 2 * Math.PI);
      ctx.fill();
    } else {
      ctx.stroke();
    }
  }
  if (running) { // the pen, where the next point starts
    const last = strokes[strokes.length - 1];
    const [x, y] = last[last.length - 1];
    ctx.fillStyle = PEN;
    ctx.beginPath();
    ctx.arc(ox + x * s, oy + y * s, 4, 0, 2 * Math.PI);
    ctx.fill();
  }
}

// The drawing as an SVG document, laid out as hyperd's own (strokes_svg): the points'
// bounding box plus a margin, 1000 pixels across.
function svgDocument() {
  const b = bounds();
  const w = Math.max(b.x1 - b.x0, 1e-3), h = Math.max(b.y1 - b.y0, 1e-3);
  const lw = Math.max(Math.max(w, h) / 300, 1e-3);
  const m = Math.max(w, h) * 0.03 + lw;
  const pxH = Math.min(Math.max((1000 * (h + 2 * m)) / (w + 2 * m), 20), 4000);
  const f = (v) => v.toFixed(2);
  const rgbHex = (c) => `#${c.match(/\d+/g).map((v) => Number(v).toString(16).padStart(2, '0')).join('')}`;
  const paths = !range.empty
    ? strokes.flatMap((s) => s.map(([x, y, a], i) => { // as hyperd's include_hyper SVG
      const [px, py] = s[i > 0 ? i - 1 : 0];
      return `<path stroke="${rgbHex(activityColour(range.at(a)))}" d="M${f(px)} ${f(py)} L${f(x)} ${f(y)}"/>`;
    }))
    : strokes.map((s) => {
      const d = s.map(([x, y], i) => `${i === 0 ? 'M' : i === 1 ? ' L' : ' '}${f(x)} ${f(y)}`).join('');
      return `<path d="${d}${s.length === 1 ? ' l0 0' : ''}"/>`;
    });
  return `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" viewBox="${(b.x0 - m).toFixed(3)} ${(b.y0 - m).toFixed(3)} ${(w + 2 * m).toFixed(3)} ${(h + 2 * m).toFixed(3)}" width="1000" height="${pxH.toFixed(0)}">
<g fill="none" stroke="black" stroke-width="${lw.toFixed(3)}" stroke-linecap="round" stroke-linejoin="round">
${paths.join('\n')}
</g>
</svg>
`;
}

function download() {
  const url = URL.createObjectURL(new Blob([svgDocument()], { type: 'image/svg+xml' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = `handwriting${drawn?.seed != null ? `-seed${drawn.seed}` : ''}.svg`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

function setBusy(busy) {
  el.sample.disabled = busy || el.model.options.length === 0;
  el.stop.disabled = !busy;
  el.download.disabled = busy || strokes.length === 0;
  const hyper = isHyper(models.get(el.model.value));
  el.hyper.disabled = busy || !hyper;
  el.hyper.parentElement.title = hyper ? '' : 'this model has no hypernetwork';
}

async function sample() {
  showError('');
  if (!el.model.value) {
    showError('No handwriting model is loaded.');
    return;
  }
  strokes = [];
  range = activityRange();
  penUp = true;
  drawn = null;
  const ctl = new AbortController();
  running = ctl;
  setBusy(true);
  draw();
  const body = {
    model: el.model.value,
    max_points: Number(el.points.value) || 700,
    bias: Number(el.bias.value),
    temperature: Number(el.temperature.value),
    stream: true,
  };
  if (el.seed.value !== '') body.seed = Number(el.seed.value);
  if (el.hyper.checked && isHyper(models.get(body.model))) body.include_hyper = true;
  el.status.textContent = 'drawing…';
  let n = 0;
  const t0 = performance.now();
  try {
    await stream('POST', '/v1/handwriting/sample', body, (ev) => {
      if (ev.done) drawn = ev;
      else {
        addPoint(ev);
        n++;
        if (n % 25 === 0) el.status.textContent = `drawing… ${n} points`;
      }
    }, { signal: ctl.signal });
    if (!drawn) throw new Error('the stream ended early: the connection to hyperd was lost');
    const secs = (performance.now() - t0) / 1000;
    el.canvas.setAttribute('aria-label', `Handwriting drawn by the model: ${drawn.points} points in ${strokes.length} strokes`);
    el.status.textContent = [`${drawn.points} points (${drawn.finish_reason})`, `${strokes.length} strokes`,
      drawn.seed != null ? `seed ${drawn.seed}` : '', `${Math.round(drawn.points / secs)} points/s`,
      `model ${drawn.model}`].filter(Boolean).join(' · ');
  } catch (err) {
    if (err.name === 'AbortError') el.status.textContent = `stopped after ${n} points`;
    else {
      showError(err.message);
      el.status.textContent = '';
    }
  } finally {
    running = null;
    setBusy(false);
    draw();
  }
}

export function setHandwritingModels(list) {
  const hw = list.filter((m) => m.kind === 'handwriting');
  models.clear();
  for (const m of hw) models.set(m.name, m);
  const keep = el.model.value;
  el.model.replaceChildren(
    ...hw.map((m) => {
      const o = document.createElement('option');
      o.value = m.name;
      o.textContent = `${m.name} · ${m.cell} ${m.units}`;
      return o;
    }),
  );
  if (hw.some((m) => m.name === keep)) el.model.value = keep;
  else if (hw.some((m) => m.name === 'handwriting')) el.model.value = 'handwriting';
  if (!running) setBusy(false);
}

export function selectHandwritingModel(name) {
  el.model.value = name;
  if (!running) setBusy(false);
}

export function initHandwriting() {
  for (const [input, out] of [[el.bias, 'hw-bias-value'], [el.temperature, 'hw-temperature-value']]) {
    input.addEventListener('input', () => { $(out).value = input.value; });
    $(out).value = input.value;
  }
  el.sample.addEventListener('click', sample);
  el.stop.addEventListener('click', () => running?.abort());
  el.download.addEventListener('click', download);
  el.model.addEventListener('change', () => { if (!running) setBusy(false); });
  el.hyper.addEventListener('change', () => { if (!running) setBusy(false); });
  new ResizeObserver(() => { if (!frame) frame = requestAnimationFrame(draw); }).observe(el.canvas);
  setBusy(false);
}

// The canvas is drawn when its panel becomes visible (a hidden canvas has no size).
export function redrawHandwriting() {
  if (!frame) frame = requestAnimationFrame(draw);
}
