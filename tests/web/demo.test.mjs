// demo.test.mjs — the demo page in a real browser: starts build/hyperd on a loopback port
// (a temporary --data-dir, an API key), drives Debian's headless Chromium through
// playwright-core as a user would (key, text, handwriting, digits, training jobs), and saves
// screenshots to build/web-screenshots/.  Exits non-zero on the first failed check.  Needs
// the MNIST digits in data/mnist (make data/mnist/9.json) for the classifier checks.
//
//   node tests/web/demo.test.mjs        (make web-test)
//   HYPERD=build/hyperd HYPER=build/hyper CHROMIUM=/usr/bin/chromium WEB_DIR=clients/web and
//   KEEP=1 (keep the temp dir) are optional.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const HYPERD = resolve(ROOT, process.env.HYPERD || 'build/hyperd');
const HYPER = resolve(ROOT, process.env.HYPER || 'build/hyper');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const WEB_DIR = resolve(ROOT, process.env.WEB_DIR || 'clients/web');
const MNIST_DIR = join(ROOT, 'data/mnist');
const SHOTS = join(ROOT, 'build/web-screenshots');
const KEY = 'web-test-key';
const TEST_TIMEOUT_MS = 240_000;

const t0 = Date.now();
const log = (msg) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${msg}`);

let tmp = null;
let daemon = null;
let browser = null;

// ---- the daemon ------------------------------------------------------------------------

// The models hyperd serves: the bundled ones, or (while models/handwriting.safetensors or
// models/digits.safetensors is not there) the bundled ones beside tiny stand-ins trained now.
function modelsDir() {
  const bundled = join(ROOT, 'models');
  const missing = ['handwriting', 'digits'].filter((n) => !existsSync(join(bundled, `${n}.safetensors`)));
  if (!missing.length) return bundled;
  const dir = join(tmp, 'models');
  mkdirSync(dir);
  for (const f of readdirSync(bundled).filter((f) => f.endsWith('.safetensors')))
    symlinkSync(join(bundled, f), join(dir, f));
  if (missing.includes('handwriting')) {
    log('models/handwriting.safetensors is missing: training a tiny one for the test');
    execFileSync(HYPER, ['train', '--kind', 'handwriting', '--data', 'synthetic:40', '--out',
      join(dir, 'handwriting.safetensors'), '--cell', 'hyperlstm', '--units', '16', '--hyper-units', '8',
      '--embed', '2', '--mixtures', '3', '--steps', '5', '--batch', '4', '--seq', '50', '--threads', '1'],
    { stdio: 'ignore' });
    rmSync(join(dir, 'handwriting.safetensors.train'), { force: true });
  }
  if (missing.includes('digits')) {
    log('models/digits.safetensors is missing: training a tiny classifier for the test');
    execFileSync(HYPER, ['train', '--kind', 'classifier', '--arch', 'hyperconv', '--data', MNIST_DIR,
      '--out', join(dir, 'digits.safetensors'), '--steps', '30', '--batch', '32', '--eval-every', '30', '--eval-images', '200',
      '--threads', '1'],
    { stdio: 'ignore' });
    rmSync(join(dir, 'digits.safetensors.train'), { force: true });
  }
  return dir;
}

// Starts hyperd on a free port; resolves with its base URL once it says it is listening
// (it does so when the models are loaded).
function startDaemon() {
  const args = ['--host', '127.0.0.1', '--port', '0', '--data-dir', join(tmp, 'data'),
    '--models', modelsDir(), '--web-dir', WEB_DIR, '--mnist-dir', MNIST_DIR, '--api-key', KEY,
    '--train-workers', '1', '--log-level', 'warn'];
  daemon = spawn(HYPERD, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, OPENBLAS_NUM_THREADS: '1' } });
  let stderr = '';
  daemon.stderr.on('data', (d) => { stderr += d; });
  return new Promise((ok, fail) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error(`hyperd did not start in 60 s:\n${stderr}`)), 60_000);
    daemon.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/[\d.]+:\d+)/);
      if (m) {
        clearTimeout(timer);
        ok(m[1]);
      }
    });
    daemon.on('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`hyperd exited (${code}) before listening:\n${stderr}`));
    });
  });
}

// Stops only the hyperd this test started: SIGTERM, then SIGKILL after 10 s.
async function stopDaemon() {
  if (!daemon || daemon.exitCode !== null || daemon.signalCode !== null) return;
  const exited = new Promise((ok) => daemon.once('exit', ok));
  daemon.kill('SIGTERM');
  const timer = setTimeout(() => daemon.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

// ---- helpers in the page ---------------------------------------------------------------

// Pixels of the canvas that hold ink (its background is transparent; the paper is CSS).
const inkPixels = (page, selector) => page.$eval(selector, (c) => {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
  return n;
});

// Pixels of an opaque canvas whose grey level is below (dark: true) or above (dark: false)
// the middle: the ink on the drawing pad, or on the black 28×28 picture the net saw.
const greyPixels = (page, selector, dark) => page.$eval(selector, (c, dark) => {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) if ((d[i] + d[i + 1] + d[i + 2] < 384) === dark) n++;
  return n;
}, dark);

// Draws a stroke on the drawing pad with the mouse, through points given as fractions of
// the pad's side.
async function drawOnPad(page, points) {
  const r = await page.$eval('#digits-pad', (c) => {
    c.scrollIntoView({ block: 'center' });
    const b = c.getBoundingClientRect();
    return { x: b.x, y: b.y, w: b.width, h: b.height };
  });
  const at = ([fx, fy]) => [r.x + fx * r.w, r.y + fy * r.h];
  await page.mouse.move(...at(points[0]));
  await page.mouse.down();
  for (const p of points.slice(1)) await page.mouse.move(...at(p), { steps: 8 });
  await page.mouse.up();
}

const SEVEN = [[0.28, 0.22], [0.5, 0.22], [0.72, 0.22], [0.6, 0.45], [0.5, 0.65], [0.44, 0.82]];
const ONE = [[0.5, 0.15], [0.5, 0.5], [0.5, 0.85]];

// Records the transcript's length at every DOM change while the page says it is busy, so
// the test can tell text that streamed in from text that came in one piece.
const watchTranscript = (page) => page.evaluate(() => {
  const out = document.getElementById('text-output');
  window.__lengths = [];
  window.__observer?.disconnect();
  window.__observer = new MutationObserver(() => {
    const gen = [...out.querySelectorAll('.gen')].map((s) => s.textContent).join('');
    window.__lengths.push({ len: gen.length, busy: out.getAttribute('aria-busy') === 'true' });
  });
  window.__observer.observe(out, { childList: true, subtree: true, characterData: true });
});

async function shot(page, name) {
  const path = join(SHOTS, `${name}.png`);
  await page.screenshot({ path });
  log(`screenshot ${path}`);
}

// ---- the test --------------------------------------------------------------------------

// A GET of a path exactly as given: { status, body }.
function rawGet(base, path) {
  const u = new URL(base);
  return new Promise((ok, fail) => {
    http.get({ host: u.hostname, port: u.port, path }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => ok({ status: res.statusCode, body }));
    }).on('error', fail);
  });
}

async function checkStatic(base) {
  const index = await fetch(`${base}/`);
  assert.equal(index.status, 200, 'GET / answers 200 without an API key');
  assert.match(index.headers.get('content-type'), /^text\/html/);
  assert.equal(index.headers.get('cache-control'), 'no-cache');
  assert.match(await index.text(), /<script type="module" src="\/web\/app.js">/);
  const js = await fetch(`${base}/web/app.js`);
  assert.equal(js.status, 200);
  assert.match(js.headers.get('content-type'), /^text\/javascript/);
  await js.arrayBuffer();
  // sent as written (fetch would resolve the dot segments itself)
  for (const bad of ['/web/nothing.js', '/web/.hidden', '/web/..', '/web/../Makefile', '/web/a.exe',
    '/web/index.html/x', '/web/%2e%2e%2fMakefile']) {
    const r = await rawGet(base, bad);
    assert.equal(r.status, 404, `${bad} is a 404`);
    assert.equal(JSON.parse(r.body).error.code, 404, `${bad}: the API's error shape`);
  }
  assert.equal((await fetch(`${base}/v1/models`)).status, 401, 'the API itself still needs the key');
  log('static routes: /, /web/{file}, 404s, the API behind its key');
}

async function checkText(page) {
  await page.click('#tab-text');
  await page.fill('#text-prompt', 'The meaning of life is ');
  await page.fill('#text-max', '3000');
  await page.fill('#text-seed', '42');
  await watchTranscript(page);
  await page.click('#text-generate');
  // a picture of the text coming in (or of the end, on a machine faster than the screenshot)
  await page.waitForFunction(() => document.getElementById('text-output').textContent.length > 60
    || /characters \(/.test(document.getElementById('text-status').textContent), null, { timeout: 60_000 });
  await shot(page, 'text-streaming');
  await page.waitForFunction(() => /characters \(/.test(document.getElementById('text-status').textContent),
    null, { timeout: 60_000 });
  const lengths = await page.evaluate(() => window.__lengths);
  const text = await page.$eval('#text-output', (e) => e.textContent);
  const generated = await page.$eval('#text-output', (e) => [...e.querySelectorAll('.gen')].map((s) => s.textContent).join(''));
  assert.ok(text.startsWith('The meaning of life is '), `the transcript starts with the prompt: ${JSON.stringify(text.slice(0, 60))}`);
  assert.equal([...generated].length, 3000, 'all 3000 characters arrived');
  // streamed: several lengths short of the whole while the request ran (one blob gives one)
  const growing = lengths.filter((l) => l.busy && l.len > 0).map((l) => l.len);
  const distinct = new Set(growing.filter((n) => n < 3000)).size;
  assert.ok(distinct >= 2, `the text streamed in: ${distinct} partial lengths while busy (want >= 2)`);
  assert.ok(growing.every((v, i) => i === 0 || v >= growing[i - 1]), 'the text only grew');
  log(`text: 3000 characters streamed in, seen at ${distinct} partial lengths`);
  await shot(page, 'text');

  // fork, then continue the copy: two sessions, the copy longer than its origin
  await page.click('#text-fork');
  await page.waitForFunction(() => document.querySelectorAll('#text-sessions button').length === 2);
  await page.fill('#text-max', '200');
  await page.click('#text-continue');
  await page.waitForFunction(() => /200 characters \(/.test(document.getElementById('text-status').textContent),
    null, { timeout: 60_000 });
  const forked = await page.$eval('#text-output', (e) => e.textContent);
  assert.ok(forked.startsWith(text) && forked.length > text.length, 'the fork went on from the same text');
  await shot(page, 'text-fork');
  await page.click('#text-sessions button:first-child');
  assert.equal(await page.$eval('#text-output', (e) => e.textContent), text, 'the original session kept its text');
  await page.click('#text-reset');
  await page.waitForFunction(() => /empty state/.test(document.getElementById('text-status').textContent));
  assert.equal(await page.$$eval('#text-output .gen', (s) => s.length), 0, 'reset emptied the transcript');
  log('text: fork, continue, switch back, reset');

  // a prompt the model cannot read: the API's message, and nothing added to the transcript
  await page.fill('#text-prompt', 'Let it \u2603');
  await page.click('#text-generate');
  await page.waitForSelector('#text-error:not([hidden])');
  const refused = await page.$eval('#text-error', (e) => e.textContent);
  assert.match(refused, /U\+2603/, `the refusal names the character: ${refused}`);
  assert.equal(await page.$$eval('#text-output .prompt, #text-output .gen', (s) => s.length), 0);
  log(`text: refused: ${refused}`);

  // coloured by hyper activity: a character span each, in more than one colour
  await page.fill('#text-prompt', 'The ');
  await page.fill('#text-max', '150');
  await page.check('#text-hyper');
  await page.click('#text-generate');
  await page.waitForFunction(() => /150 characters \(/.test(document.getElementById('text-status').textContent),
    null, { timeout: 60_000 });
  const colours = await page.$$eval('#text-output .gen .act', (s) => s.map((c) => c.style.color));
  assert.equal(colours.length, 150, 'a coloured span per generated character');
  assert.ok(new Set(colours).size > 3, `the characters differ in colour (${new Set(colours).size} colours)`);
  await shot(page, 'text-hyper');
  await page.uncheck('#text-hyper');
  log(`text: coloured by hyper activity, ${new Set(colours).size} colours`);
}

async function checkHandwriting(page) {
  await page.click('#tab-hw');
  assert.equal(await inkPixels(page, '#hw-canvas'), 0, 'the canvas starts blank');
  await page.fill('#hw-seed', '7');
  await page.fill('#hw-points', '700');
  // ink sampled at every animation frame while the drawing runs
  await page.evaluate(() => {
    window.__inkFrames = [];
    const c = document.getElementById('hw-canvas');
    const stop = document.getElementById('hw-stop');
    const tick = () => {
      if (!stop.disabled) {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
        window.__inkFrames.push(n);
      }
      if (window.__inkFrames.length < 10000) requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
  await page.click('#hw-sample');
  await page.waitForFunction(() => /700 points \(/.test(document.getElementById('hw-status').textContent),
    null, { timeout: 60_000 });
  const ink = await inkPixels(page, '#hw-canvas');
  const size = await page.$eval('#hw-canvas', (c) => c.width * c.height);
  assert.ok(ink > 500, `the canvas has ink: ${ink} of ${size} pixels`);
  const frames = await page.evaluate(() => window.__inkFrames);
  log(`handwriting: ${ink} ink pixels; ${frames.filter((n) => n > 0).length} frames drawn while it was running`);
  await shot(page, 'handwriting');

  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#hw-download')]);
  const svg = readFileSync(await download.path(), 'utf8');
  assert.match(svg, /^<\?xml[^]*<svg [^]*<path d="M/, 'Download SVG gives an SVG document of the strokes');
  log(`handwriting: downloaded ${download.suggestedFilename()} (${svg.length} bytes)`);

  // coloured by hyper activity: the download's segments carry their colours
  await page.check('#hw-hyper');
  await page.fill('#hw-points', '200');
  await page.click('#hw-sample');
  await page.waitForFunction(() => /200 points \(/.test(document.getElementById('hw-status').textContent),
    null, { timeout: 60_000 });
  assert.ok(await inkPixels(page, '#hw-canvas') > 0, 'the coloured drawing has ink');
  await shot(page, 'handwriting-hyper');
  const [coloured] = await Promise.all([page.waitForEvent('download'), page.click('#hw-download')]);
  const csvg = readFileSync(await coloured.path(), 'utf8');
  assert.equal((csvg.match(/<path stroke="#[0-9a-f]{6}"/g) || []).length, 200, 'a coloured segment per point');
  await page.uncheck('#hw-hyper');
  log('handwriting: coloured by hyper activity');
}

async function checkTraining(page) {
  await page.click('#tab-train');
  await page.selectOption('#train-kind', 'charlm');
  await page.selectOption('#train-dataset', 'fortunes');
  // an API error is shown with the API's own message
  await page.fill('#train-name', 'charlm');
  await page.click('#train-start');
  await page.waitForSelector('#train-error:not([hidden])');
  const refused = await page.$eval('#train-error', (e) => e.textContent);
  assert.match(refused, /charlm/, `the refusal names the taken model: ${refused}`);
  log(`training: a taken name is refused: ${refused}`);
  await page.fill('#train-name', 'webtest');
  await page.selectOption('#train-cell', 'lstm');
  await page.fill('#train-units', '64');
  await page.fill('#train-steps', '400');
  await page.fill('#train-batch', '16');
  await page.fill('#train-seq', '64');
  await page.fill('#train-eval', '50');
  await page.click('#train-start');
  // progress while it runs: a value strictly between 0 and 1
  await page.waitForFunction(() => {
    const v = document.getElementById('train-progress').value;
    return v > 0 && v < 1;
  }, null, { timeout: 90_000, polling: 50 });
  log(`training: running, ${await page.$eval('#stat-step', (e) => e.textContent)}`);
  await shot(page, 'training-running');
  await page.waitForFunction(() => /succeeded|failed|cancelled/.test(document.getElementById('train-state').textContent),
    null, { timeout: 180_000 });
  const state = await page.$eval('#train-state', (e) => e.textContent);
  const result = await page.$eval('#train-result', (e) => e.textContent);
  assert.equal(state, 'succeeded', `the job succeeded: ${result}`);
  assert.equal(await page.$eval('#train-progress', (e) => e.value), 1);
  assert.ok(await inkPixels(page, '#train-chart') > 200, 'the loss curve is drawn');
  assert.equal(await page.$eval('#stat-val-name', (e) => e.textContent), 'Validation loss');
  assert.equal(await page.$eval('#legend-val', (e) => e.textContent), 'validation (bits/char)');
  log(`training: ${result}`);
  await shot(page, 'training-done');

  await page.click('#train-result button');
  await page.waitForFunction(() => document.getElementById('tab-text').getAttribute('aria-selected') === 'true',
    null, { timeout: 10_000 });
  assert.equal(await page.$eval('#text-model', (e) => e.value), 'webtest', 'the new model is picked');
  await page.fill('#text-prompt', 'The ');
  await page.fill('#text-max', '120');
  await page.click('#text-generate');
  await page.waitForFunction(() => /120 characters \(/.test(document.getElementById('text-status').textContent),
    null, { timeout: 60_000 });
  assert.match(await page.$eval('#text-sessions', (e) => e.textContent), /webtest/);
  log('training: the new model writes in the Text panel');
  await shot(page, 'text-new-model');
}

// The answer shown in the Digits panel: the label, the ten bars' probabilities, which bar is
// marked best, and the status line.
const digitAnswer = (page) => page.evaluate(() => {
  const bars = [...document.querySelectorAll('#digits-bars li')];
  return {
    label: document.getElementById('digits-label').textContent,
    p: bars.map((li) => (li.dataset.p === '' ? null : Number(li.dataset.p))),
    best: bars.filter((li) => li.classList.contains('best')).map((li) => li.dataset.digit),
    fill: bars.map((li) => parseFloat(li.querySelector('.fill').style.height) / 100),
    status: document.getElementById('digits-status').textContent,
  };
});

const fmtCount = (n) => Number(n).toLocaleString('en-US');

async function checkDigits(page, base) {
  const served = (await (await fetch(`${base}/v1/models`, { headers: { Authorization: `Bearer ${KEY}` } })).json())
    .models.filter((m) => m.kind === 'classifier');
  assert.ok(served.length >= 1, 'the test server has a classifier');
  const m = served.find((x) => x.name === 'digits') || served[0];
  const classifyCalls = [];
  const onRequest = (r) => { if (/\/classify$/.test(r.url())) classifyCalls.push(r.headers()['content-type']); };
  page.on('request', onRequest);

  await page.click('#tab-digits');
  assert.ok(await page.isVisible('#digits-layout'), 'the drawing pad is shown');
  assert.ok(await page.isHidden('#digits-none'), 'no "no classifier" note');
  assert.equal(await page.isVisible('#digits-model-field'), served.length > 1, 'a model picker only with several classifiers');
  assert.equal(await page.$eval('#digits-model', (e) => e.value), m.name, `the classifier picked is ${m.name}`);
  const textModels = await page.$$eval('#text-model option', (os) => os.map((o) => o.value));
  assert.ok(!served.some((x) => textModels.includes(x.name)), `no classifier among the text models: ${textModels}`);
  const about = await page.$eval('#digits-about', (e) => e.textContent);
  assert.ok(about.startsWith(`${m.arch}: ${fmtCount(m.parameters)} parameters`), `the model's arch and size: ${about}`);
  if (m.generated_weights != null) {
    assert.ok(about.includes(`${fmtCount(m.generated_weights)} weights are generated from ${fmtCount(m.generator_parameters)}`),
      `the generated weights: ${about}`);
  }
  log(`digits: ${about}`);
  assert.equal(await greyPixels(page, '#digits-pad', true), 0, 'the pad starts blank');
  assert.equal(await page.$eval('#digits-label', (e) => e.textContent), '?');

  // a stroke, and nothing else: the pad classifies by itself once the pen lifts
  await drawOnPad(page, SEVEN);
  const ink = await greyPixels(page, '#digits-pad', true);
  assert.ok(ink > 1000, `the stroke left ink on the pad (${ink} pixels)`);
  await page.waitForFunction(() => /^[0-9]$/.test(document.getElementById('digits-label').textContent),
    null, { timeout: 10_000 });
  assert.deepEqual(classifyCalls, ['image/png'], 'one classification, of a PNG, after the pen lifted');
  let a = await digitAnswer(page);
  const sum = a.p.reduce((x, y) => x + y, 0);
  assert.equal(a.p.length, 10, 'ten probability bars');
  assert.ok(a.p.every((p) => p >= 0 && p <= 1), `probabilities in [0, 1]: ${a.p}`);
  assert.ok(Math.abs(sum - 1) < 1e-3, `the probabilities sum to 1 (${sum})`);
  const top = a.p.indexOf(Math.max(...a.p));
  assert.equal(a.label, String(top), 'the label is the most probable digit');
  assert.deepEqual(a.best, [a.label], 'its bar is the one marked');
  assert.ok(a.fill.every((h, d) => Math.abs(h - a.p[d]) < 1e-3), `each bar is as high as its probability: ${a.fill}`);
  assert.match(await page.$eval('#digits-confidence', (e) => e.textContent), /^\d+(\.\d)?% sure$/);
  const seen = await greyPixels(page, '#digits-seen', false);
  assert.ok(seen > 20 && seen < 400, `the 28×28 picture the net saw has ink (${seen} pixels)`);
  log(`digits: drew a 7, the pen lifted, ${m.name} says ${a.label} (p = ${a.p[top].toFixed(3)}); ${a.status}`);

  // the button asks again
  const [again] = await Promise.all([page.waitForResponse((r) => /\/classify$/.test(r.url())), page.click('#digits-classify')]);
  assert.equal(again.status(), 200, 'Classify sends the drawing again');
  assert.equal(classifyCalls.length, 2, 'one request per classification');
  page.off('request', onRequest);

  // the kernels, as a picture
  await page.check('#digits-show-kernels');
  await page.waitForFunction(() => document.getElementById('digits-kernels-img').naturalWidth > 0, null, { timeout: 10_000 });
  const kernels = await page.$eval('#digits-kernels-img', (i) => ({ w: i.naturalWidth, h: i.naturalHeight, shown: i.getBoundingClientRect().width }));
  assert.ok(kernels.w > 100 && kernels.h > 100 && kernels.shown > 100, `the kernels picture loaded: ${JSON.stringify(kernels)}`);
  assert.match(await page.$eval('#digits-kernels-caption', (e) => e.textContent), new RegExp(`^${m.name} `));
  log(`digits: kernels.svg shown, ${kernels.w}×${kernels.h}`);
  await shot(page, 'digits');

  // Clear empties the pad and the answer; an empty pad is refused with hyperd's message
  await page.click('#digits-clear');
  assert.equal(await greyPixels(page, '#digits-pad', true), 0, 'Clear blanks the pad');
  a = await digitAnswer(page);
  assert.equal(a.label, '?', 'Clear forgets the answer');
  assert.ok(a.p.every((p) => p === null), 'and the bars');
  await page.click('#digits-classify');
  await page.waitForSelector('#digits-error:not([hidden])');
  const refused = await page.$eval('#digits-error', (e) => e.textContent);
  assert.match(refused, /no ink/, `an empty pad is refused: ${refused}`);
  assert.equal(await page.$eval('#digits-label', (e) => e.textContent), '?', 'no label for an empty pad');
  log(`digits: an empty pad: ${refused}`);
  await shot(page, 'digits-empty');

  // a new drawing takes the error away
  await drawOnPad(page, ONE);
  await page.waitForFunction(() => /^[0-9]$/.test(document.getElementById('digits-label').textContent),
    null, { timeout: 10_000 });
  assert.ok(await page.isHidden('#digits-error'), 'the error went with the new answer');
  log(`digits: drew a 1, ${m.name} says ${await page.$eval('#digits-label', (e) => e.textContent)}`);
}

// A server without a classifier (its model list filtered on the way to a second page): the
// Digits panel says so and offers nothing to draw on.
async function checkNoClassifier(context, base) {
  const page = await context.newPage();
  await page.route(/\/v1\/models$/, async (route) => {
    const res = await route.fetch();
    const body = await res.json();
    body.models = body.models.filter((m) => m.kind !== 'classifier');
    await route.fulfill({ response: res, json: body });
  });
  await page.goto(`${base}/#digits`);
  await page.waitForFunction(() => /^ready/.test(document.getElementById('server-status').textContent));
  const note = await page.$eval('#digits-none', (e) => (e.hidden ? '' : e.textContent));
  assert.match(note, /no digit classifier/, `the panel says there is no classifier: ${note}`);
  assert.ok(await page.isHidden('#digits-layout'), 'no pad without a classifier');
  assert.ok(await page.isDisabled('#digits-show-kernels'), 'no kernels to show');
  log(`digits: without a classifier: ${note}`);
  await shot(page, 'digits-none');
  await page.close();
}

// A classifier job from the Training panel: units as the job reports them (test error in
// percent), then "Use it" puts the new model in the Digits panel.
async function checkClassifierTraining(page) {
  await page.click('#tab-train');
  await page.selectOption('#train-kind', 'classifier');
  assert.equal(await page.$eval('#train-dataset', (e) => e.value), 'mnist', 'the mnist dataset is offered');
  assert.ok(await page.isHidden('#train-cell') && await page.isHidden('#train-seq'), 'no cell or sequence for a classifier');
  assert.match(await page.$eval('#train-name', (e) => e.value), /^digits-\d+$/, 'a free name is suggested');
  await page.fill('#train-name', 'webdigits');
  await page.selectOption('#train-arch', 'conv');
  await page.fill('#train-steps', '30');
  await page.fill('#train-eval', '15');
  await page.click('#train-start');
  await page.waitForFunction(() => /^webdigits · classifier on mnist$/.test(document.getElementById('train-title').textContent)
    && /succeeded|failed|cancelled/.test(document.getElementById('train-state').textContent), null, { timeout: 90_000 });
  const result = await page.$eval('#train-result', (e) => e.textContent);
  assert.equal(await page.$eval('#train-state', (e) => e.textContent), 'succeeded', `the classifier job succeeded: ${result}`);
  assert.match(result, /ready \(test error \d+(\.\d)?%\)/, `the result gives the test error in percent: ${result}`);
  assert.equal(await page.$eval('#stat-val-name', (e) => e.textContent), 'Test error');
  assert.match(await page.$eval('#stat-val', (e) => e.textContent), /^\d+(\.\d)?%$/);
  assert.match(await page.$eval('#stat-speed', (e) => e.textContent), /images\/s$/);
  assert.equal(await page.$eval('#legend-val', (e) => e.textContent), 'test error (%)');
  assert.match(await page.$eval('#jobs-table tbody tr:first-child', (e) => e.textContent), /webdigits.*classifier.*succeeded.*% test error/);
  assert.ok(await inkPixels(page, '#train-chart') > 200, 'the loss curve is drawn');
  log(`training: ${result}`);
  await shot(page, 'training-classifier');

  await page.click('#train-result button');
  await page.waitForFunction(() => document.getElementById('tab-digits').getAttribute('aria-selected') === 'true',
    null, { timeout: 10_000 });
  assert.equal(await page.$eval('#digits-model', (e) => e.value), 'webdigits', 'the new classifier is picked');
  assert.ok(await page.isVisible('#digits-model-field'), 'two classifiers: a model picker');
  assert.match(await page.$eval('#digits-about', (e) => e.textContent), /^conv: [\d,]+ parameters/);
  await page.waitForFunction(() => /^webdigits /.test(document.getElementById('digits-kernels-caption').textContent)
    && document.getElementById('digits-kernels-img').naturalWidth > 0, null, { timeout: 10_000 });
  await page.waitForFunction(() => /model webdigits/.test(document.getElementById('digits-status').textContent)
    && /^[0-9]$/.test(document.getElementById('digits-label').textContent), null, { timeout: 10_000 });
  log(`training: webdigits in the Digits panel says ${await page.$eval('#digits-label', (e) => e.textContent)}`);
  await shot(page, 'digits-new-model');
}

async function main() {
  for (const [what, path] of [['hyperd', HYPERD], ['Chromium', CHROMIUM]])
    if (!existsSync(path)) throw new Error(`${what} is not at ${path} (make deps && make)`);
  if (!existsSync(join(MNIST_DIR, '9.json')))
    throw new Error(`the MNIST digits are not in ${MNIST_DIR} (make data/mnist/9.json)`);
  tmp = mkdtempSync(join(tmpdir(), 'hyperd-web-'));
  mkdirSync(SHOTS, { recursive: true });
  const base = await startDaemon();
  log(`hyperd (pid ${daemon.pid}) on ${base}`);
  await checkStatic(base);

  browser = await chromium.launch({ executablePath: CHROMIUM });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // the 401 before the key is given, the 400 of the unknown character and the 409 of the
    // taken name are the test's doing
    const expected = /Failed to load resource: the server responded with a status of (400|401|409)/;
    if (m.type() === 'error' && !expected.test(m.text())) problems.push(`console: ${m.text()}`);
  });

  // the key: the page notices the server wants one, and works once it is given
  await page.goto(`${base}/`);
  await page.waitForFunction(() => /API key/.test(document.getElementById('server-status').textContent));
  assert.ok(await page.$eval('#key-box', (e) => e.open), 'the key field opens by itself');
  await shot(page, 'api-key');
  await page.fill('#api-key', KEY);
  await page.press('#api-key', 'Enter');
  await page.waitForFunction(() => /^ready/.test(document.getElementById('server-status').textContent));
  log(`page: ${await page.$eval('#server-status', (e) => e.textContent)}`);

  await checkText(page);
  await checkHandwriting(page);
  await checkDigits(page, base);
  await checkNoClassifier(context, base);
  await checkTraining(page);
  await checkClassifierTraining(page);

  // a narrow screen: one column, nothing wider than the viewport
  await page.setViewportSize({ width: 390, height: 844 });
  await page.click('#tab-hw');
  await page.fill('#hw-points', '300');
  await page.click('#hw-sample');
  await page.waitForFunction(() => /300 points \(/.test(document.getElementById('hw-status').textContent));
  await shot(page, 'narrow-handwriting');
  await page.click('#tab-digits');
  await page.click('#digits-clear');
  await drawOnPad(page, SEVEN);
  await page.waitForFunction(() => /^[0-9]$/.test(document.getElementById('digits-label').textContent));
  await page.$eval('#digits-bars', (e) => e.scrollIntoView({ block: 'end' }));
  await shot(page, 'narrow-digits');
  for (const tab of ['#tab-hw', '#tab-digits', '#tab-train', '#tab-text']) {
    await page.click(tab);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${tab}: no sideways scrolling on a narrow screen (${overflow}px too wide)`);
  }
  await shot(page, 'narrow-text');

  assert.deepEqual(problems, [], 'no errors in the page');
}

const timer = setTimeout(() => {
  console.error(`FAIL: the test took more than ${TEST_TIMEOUT_MS / 1000} s`);
  cleanup().finally(() => process.exit(1));
}, TEST_TIMEOUT_MS);

async function cleanup() {
  await browser?.close().catch(() => {});
  await stopDaemon();
  if (tmp && !process.env.KEEP) rmSync(tmp, { recursive: true, force: true });
}

let failed = false;
try {
  await main();
  log('PASS: the demo page works in Chromium');
} catch (err) {
  failed = true;
  console.error(`FAIL: ${err.stack || err}`);
} finally {
  clearTimeout(timer);
  await cleanup();
}
process.exit(failed ? 1 : 0);
