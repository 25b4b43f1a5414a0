// text.js — the Text panel: a session on a character model, its text streamed in as the
// model writes it; continue, fork and reset the session.

import { activityColour, activityRange, activityTotal, isHyper } from './activity.js';
import { ApiError, call, sleep, stream } from './api.js';

const $ = (id) => document.getElementById(id);

const el = {
  model: $('text-model'),
  temperature: $('text-temperature'),
  topP: $('text-top-p'),
  max: $('text-max'),
  seed: $('text-seed'),
  prompt: $('text-prompt'),
  generate: $('text-generate'),
  cont: $('text-continue'),
  fork: $('text-fork'),
  reset: $('text-reset'),
  stop: $('text-stop'),
  sessions: $('text-sessions'),
  error: $('text-error'),
  output: $('text-output'),
  status: $('text-status'),
  hyper: $('text-hyper'),
};

const models = new Map();       // name → the model's entry in GET /v1/models

// The page's sessions: { n, id, model, parts: [{kind: 'prompt' | 'gen', text, act}], from };
// act, when the part was generated with include_hyper: the activity of each character.
// The server keeps the state; the page keeps the text (the API never returns it).
const sessions = [];
let current = null;
let running = null;             // the AbortController of the request in flight
let live = null;                // the Text node the stream appends to

function showError(message) {
  el.error.textContent = message;
  el.error.hidden = !message;
}

function setStatus(message) {
  el.status.textContent = message;
}

function setBusy(busy) {
  el.generate.disabled = busy || el.model.options.length === 0;
  for (const b of [el.cont, el.fork, el.reset]) b.disabled = busy || !current;
  const hyper = isHyper(models.get(el.model.value));
  el.hyper.disabled = busy || !hyper;
  el.hyper.parentElement.title = hyper ? '' : 'this model has no hypernetwork';
  el.stop.disabled = !busy;
  el.output.setAttribute('aria-busy', String(busy));
}

const chars = (s) => s.parts.reduce((n, p) => n + [...p.text].length, 0);

function renderSessions() {
  el.sessions.replaceChildren(
    ...sessions.map((s) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.setAttribute('aria-pressed', String(s === current));
      b.textContent = `#${s.n} ${s.model} · ${chars(s)} chars${s.from ? ` · fork of #${s.from}` : ''}`;
      b.title = `session ${s.id}`;
      b.addEventListener('click', () => {
        if (running) return;
        current = s;
        if (el.model.value !== s.model && [...el.model.options].some((o) => o.value === s.model))
          el.model.value = s.model;
        render();
        setBusy(false);
      });
      return b;
    }),
  );
}

// Draws the transcript of the current session again (after a switch, fork or reset).
function render() {
  renderSessions();
  live = null;
  if (!current || current.parts.length === 0) {
    const p = document.createElement('span');
    p.className = 'placeholder';
    p.textContent = current
      ? 'The session is empty: Generate starts it from the prompt, Continue without one.'
      : 'Type a prompt and press Generate: the text appears here as the model writes it.';
    el.output.replaceChildren(p);
    return;
  }
  el.output.replaceChildren(
    ...current.parts.map((part) => {
      const span = document.createElement('span');
      span.className = part.kind;
      if (part.act) {
        const range = activityRange();
        for (const a of part.act) if (a) range.add(activityTotal(a));
        [...part.text].forEach((ch, i) => span.append(charSpan(ch, part.act[i], range)));
      } else {
        span.textContent = part.text;
      }
      return span;
    }),
  );
}

// One character coloured by its activity a, placed in range (an activityRange).
function charSpan(ch, a, range) {
  const c = document.createElement('span');
  c.className = 'act';
  c.textContent = ch;
  if (a) {
    c.style.color = activityColour(range.at(activityTotal(a)));
    c.title = `hyper activity i ${a[0].toFixed(3)}, g ${a[1].toFixed(3)}, f ${a[2].toFixed(3)}, o ${a[3].toFixed(3)}`;
  }
  return c;
}

let counted = 0;                // when the counts were last shown (ms)

// Appends streamed text to the last part, scrolling along when the reader is at the bottom.
function append(text, hyper) {
  const atBottom = el.output.scrollHeight - el.output.scrollTop - el.output.clientHeight < 24;
  const part = current.parts[current.parts.length - 1];
  part.text += text;
  if (part.act) { // coloured against the range so far; render() recolours at the end
    part.range ??= activityRange();
    [...text].forEach((ch, i) => {
      const a = Array.isArray(hyper) ? hyper[i] : null;
      part.act.push(a);
      if (a) part.range.add(activityTotal(a));
      live.parentNode.append(charSpan(ch, a, part.range));
    });
  } else {
    live.appendData(text);
  }
  if (atBottom) el.output.scrollTop = el.output.scrollHeight;
  if (performance.now() - counted > 200) {
    counted = performance.now();
    setStatus(`writing… ${[...part.text].length} characters`);
    renderSessions();
  }
}

function startPart(hyper) {
  current.parts.push(hyper ? { kind: 'gen', text: '', act: [] } : { kind: 'gen', text: '' });
  if (current.parts.length === 1) el.output.replaceChildren();
  const span = document.createElement('span');
  span.className = 'gen';
  live = document.createTextNode('');
  span.append(live);
  el.output.append(span);
}

// A session action right after a stopped stream may find the session still held for a
// moment (409): try again briefly.
async function retryBusy(fn) {
  for (let i = 0; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 409 && i < 10)) throw err;
      await sleep(150);
    }
  }
}

async function newSession(model) {
  const s = await call('POST', '/v1/sessions', { model });
  const entry = { n: sessions.length + 1, id: s.id, model: s.model, parts: [], from: null };
  sessions.push(entry);
  return entry;
}

// Generate (fresh: the session starts over from the prompt) or Continue (from where it stopped).
async function generate(fresh) {
  showError('');
  const model = el.model.value;
  if (fresh && !model) {
    showError('No character model is loaded.');
    return;
  }
  const ctl = new AbortController();
  running = ctl;
  setBusy(true);
  let before = null;              // the parts before this request
  try {
    if (fresh) {
      if (current && current.model === model) {
        try {
          await retryBusy(() => call('POST', `/v1/sessions/${current.id}/reset`));
          current.parts = [];
        } catch (err) {
          if (!(err instanceof ApiError && err.status === 404)) throw err;
          current = await newSession(model); // gone (deleted, or evicted): start a new one
        }
      } else {
        current = await newSession(model);
      }
    }
    const body = {
      max_chars: Number(el.max.value) || 200,
      temperature: Number(el.temperature.value),
      top_p: Number(el.topP.value),
      stream: true,
    };
    if (el.seed.value !== '') body.seed = Number(el.seed.value);
    if (fresh && el.prompt.value) body.prompt = el.prompt.value;
    const hyper = el.hyper.checked && isHyper(models.get(current.model));
    if (hyper) body.include_hyper = true;
    before = current.parts.length;
    if (body.prompt) current.parts.push({ kind: 'prompt', text: body.prompt });
    render();
    startPart(hyper);
    setStatus('writing…');
    let done = null;
    const t0 = performance.now();
    await retryBusy(() =>
      stream('POST', `/v1/sessions/${current.id}/generate`, body, (ev) => {
        if (typeof ev.text === 'string') append(ev.text, ev.hyper);
        if (ev.done) done = ev;
      }, { signal: ctl.signal }),
    );
    if (!done) throw new Error('the stream ended early: the connection to hyperd was lost');
    if (hyper) render(); // every character against the largest activity of the text
    const t = done.timings || {};
    const rate = t.chars_per_second ? `${Math.round(t.chars_per_second)} chars/s` : '';
    const first = t.first_char_ms != null ? `first character after ${Math.round(t.first_char_ms)} ms` : '';
    setStatus([`${done.chars} characters (${done.finish_reason})`, rate, first,
      `${((performance.now() - t0) / 1000).toFixed(1)} s`].filter(Boolean).join(' · '));
  } catch (err) {
    if (err.name === 'AbortError') setStatus('stopped: the session keeps what was written');
    else {
      // refused before anything was written (a character the model lacks, say): the
      // session did not read the prompt either
      if (before !== null && err instanceof ApiError && !current.parts.at(-1).text) {
        current.parts.splice(before);
        render();
      }
      showError(err.message);
      setStatus('');
    }
  } finally {
    running = null;
    setBusy(false);
    renderSessions();
  }
}

async function fork() {
  showError('');
  if (!current) return;
  try {
    const f = await retryBusy(() => call('POST', `/v1/sessions/${current.id}/fork`));
    const entry = {
      n: sessions.length + 1, id: f.id, model: f.model,
      parts: current.parts.map((p) => ({ ...p })), from: current.n,
    };
    sessions.push(entry);
    setStatus(`#${entry.n} is a copy of #${current.n}: Continue on either one, and they go different ways`);
    current = entry;
    render();
  } catch (err) {
    showError(err.message);
  }
  setBusy(false);
}

async function reset() {
  showError('');
  if (!current) return;
  try {
    await retryBusy(() => call('POST', `/v1/sessions/${current.id}/reset`));
    current.parts = [];
    setStatus(`#${current.n} is back to the empty state`);
    render();
  } catch (err) {
    showError(err.message);
  }
}

// Fills the model picker with the character models (keeping the choice when it is still there).
export function setTextModels(list, defaultName) {
  const textModels = list.filter((m) => m.kind !== 'handwriting' && m.kind !== 'classifier');
  models.clear();
  for (const m of textModels) models.set(m.name, m);
  const keep = el.model.value;
  el.model.replaceChildren(
    ...textModels.map((m) => {
      const o = document.createElement('option');
      o.value = m.name;
      o.textContent = `${m.name} · ${m.cell} ${m.units}`;
      return o;
    }),
  );
  if (textModels.some((m) => m.name === keep)) el.model.value = keep;
  else if (textModels.some((m) => m.name === defaultName)) el.model.value = defaultName;
  setBusy(Boolean(running));
}

export function selectTextModel(name) {
  el.model.value = name;
  el.model.dispatchEvent(new Event('change'));
}

export function initText() {
  for (const [input, out] of [[el.temperature, 'text-temperature-value'], [el.topP, 'text-top-p-value']]) {
    input.addEventListener('input', () => { $(out).value = input.value; });
    $(out).value = input.value;
  }
  el.generate.addEventListener('click', () => generate(true));
  el.cont.addEventListener('click', () => generate(false));
  el.fork.addEventListener('click', fork);
  el.reset.addEventListener('click', reset);
  el.stop.addEventListener('click', () => running?.abort());
  el.prompt.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey) && !running) {
      e.preventDefault();
      generate(true);
    }
  });
  // another model: show its latest session (the next Generate starts one if there is none)
  el.model.addEventListener('change', () => {
    if (running) return;
    current = sessions.filter((s) => s.model === el.model.value).pop() || null;
    render();
    setBusy(false);
  });
  render();
  setBusy(false);
}
