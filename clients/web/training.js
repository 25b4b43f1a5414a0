// training.js — the Training panel: start a job on a dataset, follow its events (progress,
// losses, ETA) with a live loss curve, and use the new model once it succeeds.  A job reports
// its own units (loss_unit, val_unit); a validation "(fraction)", as a classifier's test
// error, is shown as a percentage.

import { ApiError, call, fetchBlob, sleep, stream } from './api.js';

const $ = (id) => document.getElementById(id);

const el = {
  form: $('train-form'),
  kind: $('train-kind'),
  dataset: $('train-dataset'),
  name: $('train-name'),
  cell: $('train-cell'),
  arch: $('train-arch'),
  units: $('train-units'),
  hyperUnits: $('train-hyper-units'),
  embed: $('train-embed'),
  mixtures: $('train-mixtures'),
  steps: $('train-steps'),
  batch: $('train-batch'),
  seq: $('train-seq'),
  lr: $('train-lr'),
  evalEvery: $('train-eval'),
  hint: $('train-hint'),
  start: $('train-start'),
  cancel: $('train-cancel'),
  error: $('train-error'),
  title: $('train-title'),
  state: $('train-state'),
  progress: $('train-progress'),
  percent: $('train-percent'),
  chart: $('train-chart'),
  svg: $('train-svg'),
  result: $('train-result'),
  jobs: document.querySelector('#jobs-table tbody'),
};

// Small models that train in about a minute on two cores (measured on the built-in datasets).
const DEFAULTS = {
  charlm: { cell: 'hyperlstm', units: 128, hyperUnits: 32, embed: 4, steps: 800, batch: 32, seq: 64, lr: 0.01, evalEvery: 50 },
  handwriting: { cell: 'hyperlstm', units: 64, hyperUnits: 16, embed: 4, mixtures: 10, steps: 1000, batch: 16, seq: 100, lr: 0.005, evalEvery: 25 },
  classifier: { arch: 'hyperconv', steps: 300, batch: 64, lr: 0.001, evalEvery: 100 },
};
const DATASET_KIND = { charlm: 'text', handwriting: 'strokes', classifier: 'images' };
const NAME_BASE = { charlm: 'fortune', handwriting: 'scribe', classifier: 'digits' };
const HINTS = {
  charlm: 'The defaults train a small HyperLSTM in under a minute on two cores.',
  handwriting: 'The defaults train a small HyperLSTM in under a minute on two cores.',
  classifier: 'The defaults train an MNIST net in under a minute; hyperconv generates its second '
    + 'convolution\'s 12,544 weights from 4,244 parameters (the paper\'s static hypernetwork).',
};

let hub = null;                 // { refreshModels, useModel, modelNames }
let datasets = [];
let jobs = [];
let nameTouched = false;
let watching = null;            // { id, ctl, job, points: [{step, train, val}], lastId }

function showError(message) {
  el.error.textContent = message;
  el.error.hidden = !message;
}

function fmtTime(seconds) {
  if (seconds == null || !Number.isFinite(seconds)) return '–';
  const s = Math.max(0, Math.round(seconds));
  return s >= 3600 ? `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`
    : `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

const fmtLoss = (v) => (v == null || !Number.isFinite(v) ? '–' : v.toFixed(3));

// A validation unit that is a fraction ("test error (fraction)") is shown in percent.
const isFraction = (unit) => /\(fraction\)/.test(unit || '');
const fractionName = (unit) => unit.replace(/\s*\(fraction\)/, '');

function fmtVal(v, unit) {
  if (!isFraction(unit)) return fmtLoss(v);
  return v == null || !Number.isFinite(v) ? '–' : `${(v * 100).toFixed(1)}%`;
}

function fmtRate(v, kind) {
  if (v == null || !Number.isFinite(v)) return '–';
  const unit = { handwriting: 'points/s', classifier: 'images/s' }[kind] || 'chars/s';
  return v >= 10000 ? `${(v / 1000).toFixed(0)}k ${unit}` : `${Math.round(v)} ${unit}`;
}

// ---- the form ----------------------------------------------------------------------------

function suggestName() {
  if (nameTouched) return;
  const taken = new Set([...hub.modelNames(), ...jobs.map((j) => j.model_name)]);
  const base = NAME_BASE[el.kind.value];
  let n = 1;
  while (taken.has(`${base}-${n}`)) n++;
  el.name.value = `${base}-${n}`;
}

function fillDatasets() {
  const want = DATASET_KIND[el.kind.value];
  const keep = el.dataset.value;
  const list = datasets.filter((d) => d.kind === want);
  el.dataset.replaceChildren(
    ...list.map((d) => {
      const o = document.createElement('option');
      o.value = d.name;
      o.textContent = d.builtin ? `${d.name} (built in)` : d.name;
      return o;
    }),
  );
  if (list.some((d) => d.name === keep)) el.dataset.value = keep;
}

// The kind's defaults, in the fields it uses (a classifier leaves the cell's as they were).
function applyDefaults() {
  for (const [key, value] of Object.entries(DEFAULTS[el.kind.value])) el[key].value = value;
  el.hint.textContent = HINTS[el.kind.value];
  showFields();
}

function showFields() {
  const clf = el.kind.value === 'classifier';
  const hyper = el.cell.value.includes('hyper');
  for (const f of el.form.querySelectorAll('.hyper-only')) f.hidden = !hyper;
  for (const f of el.form.querySelectorAll('.hw-only')) f.hidden = el.kind.value !== 'handwriting';
  for (const f of el.form.querySelectorAll('.rnn-only')) f.hidden = clf;
  for (const f of el.form.querySelectorAll('.clf-only')) f.hidden = !clf;
}

// A classifier job: its architecture, the rest at hyperd's defaults for it (no seq).
function classifierSpec() {
  return {
    kind: 'classifier',
    dataset: el.dataset.value,
    model_name: el.name.value.trim(),
    model: { arch: el.arch.value },
    train: {
      steps: Number(el.steps.value),
      batch: Number(el.batch.value),
      lr: Number(el.lr.value),
      eval_every: Number(el.evalEvery.value),
    },
  };
}

function spec() {
  if (el.kind.value === 'classifier') return classifierSpec();
  const model = { cell: el.cell.value, units: Number(el.units.value) };
  if (el.cell.value.includes('hyper')) {
    model.hyper_units = Number(el.hyperUnits.value);
    model.embed = Number(el.embed.value);
  }
  if (el.kind.value === 'handwriting') model.mixtures = Number(el.mixtures.value);
  return {
    kind: el.kind.value,
    dataset: el.dataset.value,
    model_name: el.name.value.trim(),
    model,
    train: {
      steps: Number(el.steps.value),
      batch: Number(el.batch.value),
      seq: Number(el.seq.value),
      lr: Number(el.lr.value),
      eval_every: Number(el.evalEvery.value),
      // a bounded evaluation keeps the validation points quick on a big text
      ...(el.kind.value === 'charlm' ? { eval_limit: 20000 } : {}),
    },
  };
}

async function start(e) {
  e.preventDefault();
  showError('');
  if (!el.dataset.value) {
    showError(el.kind.value === 'classifier'
      ? 'No images dataset: hyperd serves the built-in mnist when its digits are in --mnist-dir (make data/mnist/9.json fetches them).'
      : `No ${DATASET_KIND[el.kind.value]} dataset: upload one with POST /v1/datasets.`);
    return;
  }
  el.start.disabled = true;
  try {
    const job = await call('POST', '/v1/jobs', spec());
    nameTouched = false;
    jobs.unshift(job);
    suggestName();
    watch(job);
    refreshJobs();
  } catch (err) {
    showError(err.message);
  } finally {
    el.start.disabled = false;
  }
}

// ---- a job --------------------------------------------------------------------------------

function setState(state) {
  el.state.hidden = false;
  el.state.textContent = state;
  el.state.className = `badge ${state}`;
  el.cancel.disabled = !(state === 'queued' || state === 'running');
}

function showProgress(step, steps, p) {
  const frac = steps > 0 ? step / steps : 0;
  el.progress.value = frac;
  el.progress.setAttribute('aria-valuetext', `step ${step} of ${steps}`);
  el.percent.textContent = `${Math.floor(frac * 100)}%`;
  $('stat-step').textContent = `${step} / ${steps}`;
  if (p) {
    $('stat-train').textContent = fmtLoss(p.train_loss);
    if (p.val_loss != null) $('stat-val').textContent = fmtVal(p.val_loss, watching?.job.val_unit);
    $('stat-speed').textContent = fmtRate(p.items_per_sec, watching?.job.kind);
    $('stat-elapsed').textContent = fmtTime(p.elapsed);
    $('stat-eta').textContent = fmtTime(p.eta);
  }
}

function resetView(job) {
  el.title.textContent = `${job.model_name} · ${job.kind} on ${job.dataset}`;
  $('legend-train').textContent = `training (${job.loss_unit})`;
  $('legend-val').textContent = isFraction(job.val_unit) ? `${fractionName(job.val_unit)} (%)` : `validation (${job.val_unit})`;
  const valName = isFraction(job.val_unit) ? fractionName(job.val_unit) : 'validation loss';
  $('stat-val-name').textContent = valName[0].toUpperCase() + valName.slice(1);
  for (const id of ['stat-train', 'stat-val', 'stat-speed', 'stat-elapsed', 'stat-eta']) $(id).textContent = '–';
  el.result.hidden = true;
  el.svg.hidden = false;
  showProgress(job.step || 0, job.steps, null);
  setState(job.state);
}

// Follows a job's events until it ends; reconnects (from the last event id) if the stream
// breaks off, as when hyperd restarts.
async function watch(job) {
  watching?.ctl.abort();
  const w = { id: job.id, ctl: new AbortController(), job, points: [], lastId: null };
  watching = w;
  resetView(job);
  drawChart();
  let final = null;
  for (let attempt = 0; !final && attempt < 30 && watching === w; attempt++) {
    try {
      await stream('GET', `/v1/jobs/${job.id}/events`, undefined, (ev, id) => {
        if (id) w.lastId = id;
        if (ev.done === true) {
          final = ev;
        } else if (ev.done === false) {
          setState('reconnecting');
        } else {
          if (w.job.state !== 'running') setState('running');
          w.job.state = 'running';
          w.points.push({ step: ev.step, train: ev.train_loss, val: ev.evaluated ? ev.val_loss : null });
          showProgress(ev.step, ev.steps, ev);
          drawChart();
          updateJobRow(w.id, { state: 'running', step: ev.step, ...(ev.evaluated ? { val_loss: ev.val_loss } : {}) });
        }
      }, { signal: w.ctl.signal, lastEventId: w.lastId });
    } catch (err) {
      if (err.name === 'AbortError') return;
      if (err instanceof ApiError && err.status !== 0 && err.status !== 503) {
        showError(err.message);
        return;
      }
    }
    if (!final) await sleep(1000);
  }
  if (!final || watching !== w) return;
  finish(w, final);
}

async function finish(w, job) {
  w.job = job;
  setState(job.state);
  showProgress(job.step, job.steps, {
    train_loss: job.train_loss, val_loss: job.val_loss,
    items_per_sec: job.chars_per_second ?? job.points_per_second ?? job.images_per_second,
    elapsed: job.elapsed_seconds, eta: 0,
  });
  el.result.hidden = false;
  el.result.classList.toggle('bad', job.state !== 'succeeded');
  if (job.state === 'succeeded') {
    const unit = job.val_unit || '';
    const val = isFraction(unit) ? `${fractionName(unit)} ${fmtVal(job.val_loss, unit)}` : `validation ${fmtLoss(job.val_loss)} ${unit}`;
    const panel = { handwriting: 'Handwriting', classifier: 'Digits' }[job.kind] || 'Text';
    el.result.replaceChildren(
      text(`Model “${job.model_name}” is ready` + (job.val_loss != null ? ` (${val})` : '') + '.'),
      useButton(job, `Use it in the ${panel} panel`),
    );
    await hub.refreshModels();
  } else if (job.state === 'failed') {
    el.result.replaceChildren(text(`The job failed: ${job.error || 'no reason given'}`));
  } else {
    el.result.replaceChildren(text(`The job was ${job.state} at step ${job.step}.`));
  }
  refreshJobs();
}

function text(s) {
  const span = document.createElement('span');
  span.textContent = s;
  return span;
}

function useButton(job, label) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = 'primary';
  b.textContent = label;
  b.addEventListener('click', async () => {
    await hub.refreshModels();
    hub.useModel(job.model_name, job.kind);
  });
  return b;
}

async function cancel() {
  if (!watching) return;
  try {
    await call('POST', `/v1/jobs/${watching.id}/cancel`);
  } catch (err) {
    showError(err.message);
  }
}

async function openLossSvg(e) {
  e.preventDefault();
  if (!watching) return;
  try {
    const url = URL.createObjectURL(await fetchBlob(`/v1/jobs/${watching.id}/loss.svg`));
    const a = document.createElement('a');
    a.href = url;
    a.download = `loss-${watching.job.model_name}.svg`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  } catch (err) {
    showError(err.message);
  }
}

// ---- the loss curve -----------------------------------------------------------------------

// A padded range over the finite values (lo, hi), or null when there are none.
function range(values) {
  const v = values.filter((x) => x != null && Number.isFinite(x));
  if (!v.length) return null;
  let lo = Math.min(...v), hi = Math.max(...v);
  if (hi - lo < 1e-6) { lo -= 0.5; hi += 0.5; }
  const pad = (hi - lo) * 0.08;
  return { lo: lo >= 0 ? Math.max(0, lo - pad) : lo - pad, hi: hi + pad };
}

// The loss curves: training and validation on one scale when they share a unit, else
// validation on its own scale at the right (handwriting: nats per point, nats per line).
function drawChart() {
  const c = el.chart;
  const dpr = window.devicePixelRatio || 1;
  const w = c.clientWidth, h = c.clientHeight;
  if (!w || !h) return;
  if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
    c.width = Math.round(w * dpr);
    c.height = Math.round(h * dpr);
  }
  const ctx = c.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  ctx.font = '11px system-ui, sans-serif';
  const pts = watching ? watching.points : [];
  if (!pts.length) {
    ctx.fillStyle = '#5f6580';
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.fillText(watching ? 'waiting for the first report…' : 'the loss curve of a job appears here', w / 2, h / 2);
    return;
  }
  const job = watching.job;
  const shared = !job.loss_unit || job.loss_unit === job.val_unit;
  const trainR = range(pts.map((p) => p.train).concat(shared ? pts.map((p) => p.val) : []));
  const valR = shared ? trainR : range(pts.map((p) => p.val));
  const L = 52, R = shared ? 12 : 52, T = 10, B = 24;
  const pw = w - L - R, ph = h - T - B;
  const steps = Math.max(job.steps, 1);
  const X = (s) => L + (s / steps) * pw;
  const Y = (r, v) => T + (1 - (v - r.lo) / (r.hi - r.lo)) * ph;

  // grid, step axis, one or two loss axes
  ctx.strokeStyle = '#e6e8f0';
  ctx.lineWidth = 1;
  ctx.textBaseline = 'middle';
  for (let k = 0; k <= 4; k++) {
    const y = Math.round(T + (ph * k) / 4) + 0.5;
    ctx.beginPath();
    ctx.moveTo(L, y);
    ctx.lineTo(L + pw, y);
    ctx.stroke();
    const label = (r, x, align, color, percent) => {
      if (!r) return;
      const v = r.hi - ((r.hi - r.lo) * k) / 4;
      ctx.fillStyle = color;
      ctx.textAlign = align;
      ctx.fillText(percent ? `${(v * 100).toFixed(1)}%` : v.toFixed(2), x, y);
    };
    label(trainR, L - 6, 'right', '#5f6580', false);
    if (!shared) label(valR, L + pw + 6, 'left', '#c2364e', isFraction(job.val_unit));
  }
  ctx.fillStyle = '#5f6580';
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  for (let k = 0; k <= 4; k++) ctx.fillText(String(Math.round((steps * k) / 4)), X((steps * k) / 4), T + ph + 6);

  const line = (key, r, color, dots) => {
    const series = pts.filter((p) => p[key] != null && Number.isFinite(p[key]));
    if (!r || !series.length) return;
    ctx.strokeStyle = color;
    ctx.fillStyle = color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    series.forEach((p, i) => (i ? ctx.lineTo(X(p.step), Y(r, p[key])) : ctx.moveTo(X(p.step), Y(r, p[key]))));
    ctx.stroke();
    if (dots) {
      for (const p of series) {
        ctx.beginPath();
        ctx.arc(X(p.step), Y(r, p[key]), 2.5, 0, 2 * Math.PI);
        ctx.fill();
      }
    }
  };
  line('train', trainR, '#3b3f8f', false);
  line('val', valR, '#c2364e', true);
}

// ---- the job list -------------------------------------------------------------------------

async function refreshJobs() {
  try {
    const r = await call('GET', '/v1/jobs?limit=1000');
    jobs = r.jobs.sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
  } catch {
    return; // the status bar reports an unreachable server
  }
  renderJobs();
  suggestName();
}

const jobCells = (j) => [j.model_name, j.kind, j.state, `${j.step} / ${j.steps}`,
  j.val_loss == null ? '–'
    : isFraction(j.val_unit) ? `${fmtVal(j.val_loss, j.val_unit)} ${fractionName(j.val_unit)}`
      : `${fmtLoss(j.val_loss)} ${j.val_unit}`];

// The watched job's row follows its events between two listings (in place: a focused
// button keeps its focus).
function updateJobRow(id, fields) {
  const j = jobs.find((x) => x.id === id);
  const tr = el.jobs.querySelector(`tr[data-id="${id}"]`);
  if (!j || !tr) return;
  Object.assign(j, fields);
  jobCells(j).forEach((v, k) => { tr.cells[k].textContent = v; });
}

function renderJobs() {
  const names = new Set(hub.modelNames());
  el.jobs.replaceChildren(
    ...jobs.slice(0, 8).map((j) => {
      const tr = document.createElement('tr');
      tr.dataset.id = j.id;
      if (watching?.id === j.id) tr.className = 'current';
      for (const v of jobCells(j)) {
        const td = document.createElement('td');
        td.textContent = v;
        tr.append(td);
      }
      const td = document.createElement('td');
      const show = document.createElement('button');
      show.type = 'button';
      show.textContent = 'Show';
      show.setAttribute('aria-label', `Show job ${j.model_name}`);
      show.addEventListener('click', () => { showError(''); watch(j); refreshJobs(); });
      td.append(show);
      if (j.state === 'succeeded' && names.has(j.model_name)) {
        const use = useButton(j, 'Use');
        use.className = '';
        use.setAttribute('aria-label', `Use model ${j.model_name}`);
        td.append(' ', use);
      }
      tr.append(td);
      return tr;
    }),
  );
}

// ---- setup ---------------------------------------------------------------------------------

export async function loadTraining() {
  try {
    datasets = (await call('GET', '/v1/datasets')).datasets;
    fillDatasets();
  } catch (err) {
    showError(err.message);
  }
  await refreshJobs();
  // follow the newest job still at work, as a reload of the page would expect
  if (!watching) {
    const active = jobs.find((j) => j.state === 'running' || j.state === 'queued');
    if (active) watch(active);
  }
}

export function redrawTraining() {
  drawChart();
}

export function initTraining(h) {
  hub = h;
  el.kind.addEventListener('change', () => {
    applyDefaults();
    fillDatasets();
    suggestName();
  });
  el.cell.addEventListener('change', showFields);
  el.name.addEventListener('input', () => { nameTouched = true; });
  el.form.addEventListener('submit', start);
  el.cancel.addEventListener('click', cancel);
  el.svg.addEventListener('click', openLossSvg);
  new ResizeObserver(drawChart).observe(el.chart);
  applyDefaults();
}
