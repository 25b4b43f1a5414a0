// app.js — the demo page of hyperd: tabs, the server's status, the API key, the model list
// shared by the panels (text.js, handwriting.js, digits.js, training.js).  Plain ES modules,
// no build step; everything is served by hyperd itself.

import { ApiError, apiKey, call, setApiKey, sleep } from './api.js';
import { initText, selectTextModel, setTextModels } from './text.js';
import { initHandwriting, redrawHandwriting, selectHandwritingModel, setHandwritingModels } from './handwriting.js';
import { initDigits, selectDigitModel, setDigitModels } from './digits.js';
import { initTraining, loadTraining, redrawTraining } from './training.js';

const $ = (id) => document.getElementById(id);

let models = [];

// ---- tabs (WAI-ARIA tabs: arrow keys move between them) -----------------------------------

const TABS = { text: 'tab-text', handwriting: 'tab-hw', digits: 'tab-digits', training: 'tab-train' };
const tabs = [...document.querySelectorAll('[role="tab"]')];

function showTab(tab, { focus = false } = {}) {
  for (const t of tabs) {
    const on = t === tab;
    t.setAttribute('aria-selected', String(on));
    t.tabIndex = on ? 0 : -1;
    $(t.getAttribute('aria-controls')).hidden = !on;
  }
  if (focus) tab.focus();
  const name = Object.keys(TABS).find((k) => TABS[k] === tab.id);
  history.replaceState(null, '', `#${name}`);
  if (name === 'handwriting') redrawHandwriting();
  if (name === 'training') redrawTraining();
}

function initTabs() {
  tabs.forEach((t, i) => {
    t.addEventListener('click', () => showTab(t));
    t.addEventListener('keydown', (e) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[e.key];
      if (step) showTab(tabs[(i + step + tabs.length) % tabs.length], { focus: true });
      else if (e.key === 'Home') showTab(tabs[0], { focus: true });
      else if (e.key === 'End') showTab(tabs[tabs.length - 1], { focus: true });
    });
  });
  const fromHash = TABS[location.hash.slice(1)];
  showTab(fromHash ? $(fromHash) : tabs[0]);
}

// ---- server status, models -----------------------------------------------------------------

function setStatus(text, ok) {
  const s = $('server-status');
  s.textContent = text;
  s.classList.toggle('ok', ok === true);
  s.classList.toggle('bad', ok === false);
}

// Loads the model list into every picker.  Resolves 'ok', 'auth' (the key is missing or
// wrong: the key form takes it from there) or 'retry'.
async function refreshModels() {
  try {
    const r = await call('GET', '/v1/models');
    models = r.models;
    setTextModels(models, r.default);
    setHandwritingModels(models);
    setDigitModels(models);
    const hw = models.filter((m) => m.kind === 'handwriting').length;
    const clf = models.filter((m) => m.kind === 'classifier').length;
    setStatus(`ready · ${models.length - hw - clf} text, ${hw} handwriting, ${clf} digit model${clf === 1 ? '' : 's'}`, true);
    return 'ok';
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      setStatus(apiKey() ? 'the API key was refused' : 'this server needs an API key', false);
      $('key-box').open = true;
      $('api-key').focus();
      return 'auth';
    }
    setStatus(err.message, err instanceof ApiError && err.status === 503 ? null : false);
    return 'retry';
  }
}

function useModel(name, kind) {
  if (kind === 'handwriting') {
    selectHandwritingModel(name);
    showTab($(TABS.handwriting), { focus: true });
  } else if (kind === 'classifier') {
    selectDigitModel(name);
    showTab($(TABS.digits), { focus: true });
  } else {
    selectTextModel(name);
    showTab($(TABS.text), { focus: true });
  }
}

// Until hyperd is ready (models loading, sessions restored) every API route answers 503:
// wait for it, then load what the panels show.
async function connect() {
  for (let wait = 500; ; wait = Math.min(wait * 2, 5000)) {
    const r = await refreshModels();
    if (r === 'auth') return;
    if (r === 'ok') break;
    await sleep(wait);
  }
  await loadTraining();
}

// ---- the API key ---------------------------------------------------------------------------

function initKey() {
  const input = $('api-key');
  input.value = apiKey();
  $('key-box').classList.toggle('set', Boolean(apiKey()));
  $('key-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    setApiKey(input.value.trim());
    $('key-box').classList.toggle('set', Boolean(apiKey()));
    $('key-box').open = false;
    if ((await refreshModels()) === 'ok') await loadTraining();
  });
}

initTabs();
initKey();
initText();
initHandwriting();
initDigits();
initTraining({ refreshModels, useModel, modelNames: () => models.map((m) => m.name) });
connect();
