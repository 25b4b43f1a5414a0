// api.js — hyperd's HTTP API as seen from the page: JSON calls, and server-sent events read
// from fetch() (EventSource can neither POST nor send an Authorization header).

const KEY_STORAGE = 'hyperd.apiKey';

export function apiKey() {
  return localStorage.getItem(KEY_STORAGE) || '';
}

export function setApiKey(key) {
  if (key) localStorage.setItem(KEY_STORAGE, key);
  else localStorage.removeItem(KEY_STORAGE);
}

// A refused request: status is the HTTP status (0 when hyperd could not be reached) and
// message the API's own {"error": {"message": ...}}.
export class ApiError extends Error {
  constructor(status, type, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.type = type;
  }
}

function headers(extra) {
  const h = { ...extra };
  const key = apiKey();
  if (key) h.Authorization = `Bearer ${key}`;
  return h;
}

async function send(method, path, body, extraHeaders, signal) {
  const init = { method, headers: headers(extraHeaders), signal };
  if (body instanceof Blob) { // sent as it is, typed by its own type (a PNG, say)
    init.headers['Content-Type'] = body.type || 'application/octet-stream';
    init.body = body;
  } else if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(0, 'network', `cannot reach hyperd (${err.message})`);
  }
  if (!res.ok) {
    let e = null;
    try {
      e = (await res.json()).error;
    } catch {
      // not the API's JSON (a proxy's page, say): the status line says enough
    }
    throw new ApiError(res.status, e?.type || 'http', e?.message || `${res.status} ${res.statusText}`);
  }
  return res;
}

// One request with a JSON body, or a Blob sent as it is; resolves with the decoded JSON reply
// (null for 204), rejects with an ApiError.
export async function call(method, path, body, { signal } = {}) {
  const res = await send(method, path, body, {}, signal);
  return res.status === 204 ? null : res.json();
}

// The raw reply of a GET (for an SVG or other document), as a Blob.
export async function fetchBlob(path) {
  const res = await send('GET', path, undefined, {}, undefined);
  return res.blob();
}

// A streamed request: calls onEvent(data, id) for every SSE event, in order, and resolves
// when the server ends the stream.  Rejects with an ApiError when the request is refused,
// or with the AbortError when signal aborts it (the server then cancels the work).
export async function stream(method, path, body, onEvent, { signal, lastEventId } = {}) {
  const extra = { Accept: 'text/event-stream' };
  if (lastEventId) extra['Last-Event-ID'] = lastEventId;
  const res = await send(method, path, body, extra, signal);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    // hyperd ends lines with \n; an event is the lines up to a blank one
    let end;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      let data = null;
      let id = null;
      for (const line of block.split('\n')) {
        if (line.startsWith('data:')) data = (data === null ? '' : data + '\n') + line.slice(5).trimStart();
        else if (line.startsWith('id:')) id = line.slice(3).trim();
        // lines starting with ':' are heartbeats
      }
      if (data !== null) onEvent(JSON.parse(data), id);
    }
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
