// The hub's REST API, as DESIGN.md describes it. Every call resolves to the parsed
// JSON body or rejects with an ApiError carrying the API's error code and message.

import {h} from './dom.js';

// ApiError is a non-2xx answer (or a network failure, with status 0).
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// A hub started with --api-token answers 401 to a request without the token.
// The dashboard then asks for it once, keeps it in sessionStorage (gone when
// the browser session ends) and sends it as a Bearer header; the live tail,
// an EventSource that cannot send headers, carries it as ?token=.
const TOKEN_KEY = 'tributary.api-token';
let token = sessionStorage.getItem(TOKEN_KEY) || '';
let asking = null;

// askToken shows one dialog for every request waiting on it and resolves to
// the token typed.
function askToken(message) {
  if (!asking) {
    asking = new Promise((resolve) => {
      const input = h('input', {id: 'token-input', name: 'token', type: 'password', autocomplete: 'current-password', required: true});
      const form = h('form', {method: 'dialog'},
        h('h2', {id: 'token-title'}, 'API token'),
        h('p', {id: 'token-why'}, `The hub wants its API token (${message}).`),
        h('label', {for: 'token-input'}, 'Token'),
        input,
        h('button', {type: 'submit'}, 'Sign in'));
      const dlg = h('dialog', {id: 'token-dialog', 'aria-labelledby': 'token-title', 'aria-describedby': 'token-why'}, form);
      dlg.addEventListener('cancel', (e) => e.preventDefault());
      form.addEventListener('submit', () => {
        const v = input.value.trim();
        sessionStorage.setItem(TOKEN_KEY, v);
        token = v;
        dlg.remove();
        asking = null;
        resolve(v);
      });
      document.body.append(dlg);
      dlg.showModal();
    });
  }
  return asking;
}

async function call(method, path, body) {
  for (;;) {
    const used = token;
    const res = await send(method, path, body);
    if (res.status !== 401) return answer(method, path, res);
    // A token typed while this request was out: try that one first.
    if (token !== used) continue;
    const data = await parse(method, path, res).catch(() => null);
    await askToken((data && data.error && data.error.message) || 'unauthorized');
  }
}

async function send(method, path, body) {
  const headers = {Accept: 'application/json'};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  try {
    return await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch (err) {
    throw new ApiError(0, 'unavailable', `hub unreachable: ${err.message}`);
  }
}

async function parse(method, path, res) {
  const text = await res.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    if (res.ok) throw new ApiError(res.status, 'internal', `${method} ${path}: answer is not JSON`);
    return null;
  }
}

async function answer(method, path, res) {
  const data = await parse(method, path, res);
  if (!res.ok) {
    const e = data && data.error;
    throw new ApiError(res.status, (e && e.code) || 'internal', (e && e.message) || `${method} ${path}: HTTP ${res.status}`);
  }
  return data;
}

const enc = encodeURIComponent;

// nodes returns one page of the node list with totals over the whole fleet
// ({nodes: [...], next, totals}). p holds the API's parameters: limit, after,
// online (true or false), prefix and sort (name, offline, backlog, missing,
// rate); empty ones are left out.
export function nodes(p = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(p)) {
    if (v === '' || v === undefined || v === null) continue;
    q.set(k, String(v));
  }
  const s = q.toString();
  return call('GET', s ? `/api/v1/nodes?${s}` : '/api/v1/nodes');
}

// gaps returns the gaps of one node ({node, gaps: [...]}).
export const gaps = (node) => call('GET', `/api/v1/nodes/${enc(node)}/gaps`);

// query runs a pattern query; q holds the API's fields (pattern, where, stream,
// from, to, limit, after, count). Empty fields are left out.
export function query(q) {
  const body = {};
  for (const [k, v] of Object.entries(q)) {
    if (v === '' || v === undefined || v === null || v === false) continue;
    body[k] = v;
  }
  return call('POST', '/api/v1/query', body);
}

// aggregate runs an aggregate (pattern, where, stream, from, to, window,
// group_by and aggregates as lists) with POST /api/v1/aggregate; with get set
// it asks GET /api/v1/aggregate with the same fields, lists comma-separated.
export function aggregate(q, {get = false} = {}) {
  const body = {};
  for (const [k, v] of Object.entries(q)) {
    if (v === '' || v === undefined || v === null || (Array.isArray(v) && !v.length)) continue;
    body[k] = v;
  }
  if (!get) return call('POST', '/api/v1/aggregate', body);
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(body)) p.set(k, Array.isArray(v) ? v.join(',') : String(v));
  return call('GET', `/api/v1/aggregate?${p}`);
}

// counters returns every counter ({counters: [...]}).
export const counters = () => call('GET', '/api/v1/counters');

// cluster returns this hub's view of its cluster ({name, clustered, peers, stream_leader, replicas, …}).
export const cluster = () => call('GET', '/api/v1/cluster');

// liveURL is the server-sent events address of a live query.
export function liveURL({pattern, where, stream}) {
  const p = new URLSearchParams({pattern});
  if (where) p.set('where', where);
  if (stream) p.set('stream', stream);
  if (token) p.set('token', token);
  return `/api/v1/query/live?${p}`;
}

// whereColumn finds the column in a predicate error ("where: ... at column 6"),
// or returns 0 when the message names none.
export function whereColumn(message) {
  const m = /^where:.*\bcolumn (\d+)/s.exec(message || '');
  return m ? Number(m[1]) : 0;
}
