// digits.js — the Digits panel: a digit drawn with mouse, finger or pen on a square pad, sent
// to a classifier (POST /v1/models/{name}/classify) as a PNG of the pad; the reply's label,
// its ten probabilities as bars, and the 28×28 picture the net saw after hyperd cropped,
// scaled and centred the drawing as MNIST's digits are.  "Show kernels" puts the model's
// kernels.svg beside it (for a hypernetwork, the weights it generated).

import { call, fetchBlob } from './api.js';

const $ = (id) => document.getElementById(id);

const el = {
  modelField: $('digits-model-field'),
  model: $('digits-model'),
  about: $('digits-about'),
  auto: $('digits-auto'),
  showKernels: $('digits-show-kernels'),
  none: $('digits-none'),
  error: $('digits-error'),
  layout: $('digits-layout'),
  pad: $('digits-pad'),
  hint: $('digits-hint'),
  classify: $('digits-classify'),
  clear: $('digits-clear'),
  label: $('digits-label'),
  confidence: $('digits-confidence'),
  bars: $('digits-bars'),
  seen: $('digits-seen'),
  seenFigure: $('digits-seen-figure'),
  kernels: $('digits-kernels'),
  kernelsImg: $('digits-kernels-img'),
  kernelsCaption: $('digits-kernels-caption'),
  status: $('digits-status'),
};

const models = new Map();       // name → the model's entry in GET /v1/models (classifiers only)

// The pad is drawn at a fixed 280×280 whatever its size on screen (the PNG sent stays small);
// a stroke 20 pixels wide on a digit most of the pad high becomes, once hyperd scales the
// digit to 20×20, about as thick as MNIST's pen.
const PAD = 280;
const PEN_WIDTH = 20;
const INK = '#1c1f33';
const PAPER = '#ffffff';
const AUTO_DELAY_MS = 450;      // the pause after the pen lifts before classifying by itself
const NO_CLASSIFIER = 'This server has no digit classifier. Train one in the Training panel '
  + '(kind “digit classifier”), or start hyperd with one in --models '
  + '(hyper train --kind classifier --out models/digits.safetensors).';

let inked = false;              // something is drawn on the pad
let pen = null;                 // { id, x, y }: the pointer drawing now
let autoTimer = 0;
let running = null;             // the AbortController of the classification in flight
let kernelsUrl = null;          // the object URL the kernels <img> shows
let kernelsFor = '';            // the model it was fetched for

function showError(message) {
  el.error.textContent = message;
  el.error.hidden = !message;
}

const fmtCount = (n) => Number(n).toLocaleString('en-US');
const fmtPercent = (p) => `${(p * 100).toFixed(p >= 0.9995 || p < 0.0005 ? 0 : 1)}%`;
// a bar's label, short enough for a narrow bar: whole percents from 10% up
const barPercent = (p) => (p >= 0.0995 ? `${Math.round(p * 100)}%` : fmtPercent(p));

// One line on the model: its architecture and parameter counts, and for a hypernetwork how
// many of the net's weights are generated, and from how few parameters.
function describe(m) {
  let s = `${m.arch}: ${fmtCount(m.parameters)} parameters`;
  if (m.generated_weights != null) {
    const which = m.arch === 'hyperconv' ? "the second conv's " : m.arch === 'hypermlp' ? "both layers' " : '';
    s += `; ${which}${fmtCount(m.generated_weights)} weights are generated from ${fmtCount(m.generator_parameters)}`;
    if (m.embedding_size != null) s += ` (embeddings of ${m.embedding_size})`;
  } else {
    s += ', every weight learned directly';
  }
  return s;
}

// ---- the pad --------------------------------------------------------------------------------

function blankPad() {
  const ctx = el.pad.getContext('2d');
  ctx.fillStyle = PAPER;
  ctx.fillRect(0, 0, PAD, PAD);
  inked = false;
  el.hint.hidden = false;
}

// A pointer event's place in the pad's own pixels (the pad may be shown smaller or larger).
function padPoint(e) {
  const r = el.pad.getBoundingClientRect();
  return { x: ((e.clientX - r.left) * PAD) / r.width, y: ((e.clientY - r.top) * PAD) / r.height };
}

function inkTo(x, y) {
  const ctx = el.pad.getContext('2d');
  ctx.strokeStyle = INK;
  ctx.lineWidth = PEN_WIDTH;
  ctx.lineCap = 'round';
  ctx.lineJoin = 'round';
  ctx.beginPath();
  ctx.moveTo(pen.x, pen.y);
  ctx.lineTo(x, y);
  ctx.stroke();
  pen.x = x;
  pen.y = y;
}

function penDown(e) {
  if (pen || models.size === 0) return;
  if (e.pointerType === 'mouse' && e.button !== 0) return;
  e.preventDefault();
  clearTimeout(autoTimer);
  el.pad.setPointerCapture(e.pointerId);
  const p = padPoint(e);
  pen = { id: e.pointerId, ...p };
  const ctx = el.pad.getContext('2d');
  ctx.fillStyle = INK;
  ctx.beginPath();
  ctx.arc(p.x, p.y, PEN_WIDTH / 2, 0, 2 * Math.PI); // a tap leaves a dot
  ctx.fill();
  inked = true;
  el.hint.hidden = true;
}

function penMove(e) {
  if (!pen || e.pointerId !== pen.id) return;
  e.preventDefault();
  // the moves the browser merged into this one, for smooth curves from a fast hand
  const moves = e.getCoalescedEvents ? e.getCoalescedEvents() : [];
  for (const m of moves.length ? moves : [e]) {
    const p = padPoint(m);
    inkTo(p.x, p.y);
  }
}

function penUp(e) {
  if (!pen || e.pointerId !== pen.id) return;
  pen = null;
  if (el.auto.checked) autoTimer = setTimeout(classify, AUTO_DELAY_MS);
}

function clearPad() {
  clearTimeout(autoTimer);
  running?.abort();
  running = null;
  blankPad();
  showResult(null);
  showError('');
  el.status.textContent = '';
}

// ---- the answer -----------------------------------------------------------------------------

function buildBars() {
  el.bars.replaceChildren(
    ...Array.from({ length: 10 }, (_, d) => {
      const li = document.createElement('li');
      li.dataset.digit = String(d);
      const track = document.createElement('span');
      track.className = 'track';
      const fill = document.createElement('span');
      fill.className = 'fill';
      track.append(fill);
      const pct = document.createElement('span');
      pct.className = 'pct';
      const digit = document.createElement('span');
      digit.className = 'digit';
      digit.textContent = String(d);
      li.append(pct, track, digit);
      return li;
    }),
  );
}

// Shows a reply of classify, or nothing (null): the label, the bars, what the net saw.
function showResult(r) {
  el.label.textContent = r ? String(r.label) : '?';
  el.label.classList.toggle('empty', !r);
  el.confidence.textContent = r ? `${fmtPercent(r.probabilities[r.label])} sure` : '';
  [...el.bars.children].forEach((li, d) => {
    const p = r ? r.probabilities[d] : 0;
    li.dataset.p = r ? String(p) : '';
    li.classList.toggle('best', Boolean(r) && d === r.label);
    li.querySelector('.fill').style.height = `${(p * 100).toFixed(2)}%`;
    li.querySelector('.pct').textContent = r ? barPercent(p) : '';
    li.title = r ? `${d}: ${(p * 100).toFixed(2)}%` : '';
  });
  el.bars.setAttribute('aria-label', r
    ? `Probability of each digit: ${r.probabilities.map((p, d) => `${d} ${fmtPercent(p)}`).join(', ')}`
    : 'Probability of each digit: none yet');
  const ctx = el.seen.getContext('2d');
  if (r && Array.isArray(r.image) && r.image.length === 28 * 28) {
    // as the net reads it: ink 1 is white, the ground 0 is black
    const img = ctx.createImageData(28, 28);
    r.image.forEach((v, k) => {
      const g = Math.round(Math.min(1, Math.max(0, v)) * 255);
      img.data.set([g, g, g, 255], k * 4);
    });
    ctx.putImageData(img, 0, 0);
    el.seenFigure.classList.remove('empty');
  } else {
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, 28, 28);
    el.seenFigure.classList.add('empty');
  }
}

const padPng = () => new Promise((ok, fail) => {
  el.pad.toBlob((b) => (b ? ok(b) : fail(new Error('the browser could not make a PNG of the drawing'))), 'image/png');
});

// Sends the pad as a PNG; a newer request (or Clear) supersedes one still in flight.
async function classify() {
  clearTimeout(autoTimer);
  const name = el.model.value;
  if (!name) {
    showError('No digit classifier is loaded.');
    return;
  }
  running?.abort();
  const ctl = new AbortController();
  running = ctl;
  showError('');
  el.status.textContent = 'classifying…';
  const t0 = performance.now();
  try {
    const png = await padPng();
    const r = await call('POST', `/v1/models/${encodeURIComponent(name)}/classify`, png, { signal: ctl.signal });
    if (running !== ctl) return;
    showResult(r);
    el.status.textContent = `${Math.round(performance.now() - t0)} ms · model ${r.model} · ${fmtCount(png.size)} byte PNG`;
  } catch (err) {
    if (err.name === 'AbortError' || running !== ctl) return;
    showResult(null);
    showError(`Could not classify the drawing: ${err.message}`);
    el.status.textContent = '';
  } finally {
    if (running === ctl) running = null;
  }
}

// ---- the kernels ----------------------------------------------------------------------------

async function showKernels() {
  const name = el.model.value;
  el.kernels.hidden = !el.showKernels.checked || !name;
  if (el.kernels.hidden || kernelsFor === name) return;
  kernelsFor = name;
  el.kernelsCaption.textContent = `loading the kernels of ${name}…`;
  el.kernelsImg.removeAttribute('src');
  try {
    const blob = await fetchBlob(`/v1/models/${encodeURIComponent(name)}/kernels.svg`);
    if (kernelsFor !== name) return; // another model was picked meanwhile
    if (kernelsUrl) URL.revokeObjectURL(kernelsUrl);
    kernelsUrl = URL.createObjectURL(blob);
    el.kernelsImg.src = kernelsUrl;
    const m = models.get(name);
    el.kernelsImg.alt = `The weights of ${name}, drawn as coloured squares`;
    el.kernelsCaption.textContent = `${name} (${m?.arch ?? 'classifier'}): red is a positive weight, blue a negative one, white zero`
      + (m?.generated_weights != null ? '; the generated weights as the hypernetwork makes them.' : '.');
  } catch (err) {
    if (kernelsFor === name) kernelsFor = '';
    el.kernelsCaption.textContent = '';
    showError(`Could not load the kernels: ${err.message}`);
  }
}

// ---- models ---------------------------------------------------------------------------------

function modelChanged() {
  const m = models.get(el.model.value);
  el.about.textContent = m ? describe(m) : '';
  el.about.hidden = !m;
  showResult(null);
  showError('');
  el.status.textContent = '';
  showKernels();
  if (inked) classify();
}

function setEnabled(on) {
  el.none.hidden = on;
  el.layout.hidden = !on;
  for (const c of [el.classify, el.clear, el.auto, el.showKernels, el.model]) c.disabled = !on;
  if (!on) el.kernels.hidden = true;
}

// Fills the picker with the classifiers of GET /v1/models: the one picked stays, else the
// one called "digits", else the first.  With none the panel says so and draws nothing.
export function setDigitModels(list) {
  const clf = list.filter((m) => m.kind === 'classifier');
  models.clear();
  for (const m of clf) models.set(m.name, m);
  const keep = el.model.value;
  el.model.replaceChildren(
    ...clf.map((m) => {
      const o = document.createElement('option');
      o.value = m.name;
      o.textContent = `${m.name} · ${m.arch}`;
      return o;
    }),
  );
  if (models.has(keep)) el.model.value = keep;
  else if (models.has('digits')) el.model.value = 'digits';
  el.modelField.hidden = clf.length < 2;
  el.none.textContent = NO_CLASSIFIER;
  setEnabled(clf.length > 0);
  if (el.model.value !== keep || !clf.length) modelChanged();
  else el.about.textContent = describe(models.get(keep)); // its counts, should the file have changed
}

export function selectDigitModel(name) {
  if (!models.has(name) || el.model.value === name) return;
  el.model.value = name;
  modelChanged();
}

export function initDigits() {
  el.pad.width = PAD;
  el.pad.height = PAD;
  blankPad();
  buildBars();
  showResult(null);
  el.pad.addEventListener('pointerdown', penDown);
  el.pad.addEventListener('pointermove', penMove);
  el.pad.addEventListener('pointerup', penUp);
  el.pad.addEventListener('pointercancel', penUp);
  el.pad.addEventListener('lostpointercapture', penUp);
  el.classify.addEventListener('click', classify);
  el.clear.addEventListener('click', clearPad);
  el.model.addEventListener('change', modelChanged);
  el.showKernels.addEventListener('change', showKernels);
  el.auto.addEventListener('change', () => { if (!el.auto.checked) clearTimeout(autoTimer); });
  el.kernelsImg.addEventListener('error', () => {
    if (el.kernelsImg.getAttribute('src')) showError('The kernels picture could not be shown.');
  });
  setEnabled(false);
  el.none.textContent = 'Waiting for the model list…';
}
