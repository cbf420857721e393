// The hub's REST API, as DESIGN.md describes it. Every call resolves to the parsed
// JSON body or rejects with an ApiError carrying the API's error code and message.

// ApiError is a non-2xx answer (or a network failure, with status 0).
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function call(method, path, body) {
  let res;
  try {
    res = await fetch(path, {
      method,
      headers: body === undefined ? {Accept: 'application/json'} : {Accept: 'application/json', 'Content-Type': 'application/json'},
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch (err) {
    throw new ApiError(0, 'unavailable', `hub unreachable: ${err.message}`);
  }
  let data = null;
  const text = await res.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      if (res.ok) throw new ApiError(res.status, 'internal', `${method} ${path}: answer is not JSON`);
    }
  }
  if (!res.ok) {
    const e = data && data.error;
    throw new ApiError(res.status, (e && e.code) || 'internal', (e && e.message) || `${method} ${path}: HTTP ${res.status}`);
  }
  return data;
}

const enc = encodeURIComponent;

// nodes returns the node list ({nodes: [...]}).
export const nodes = () => call('GET', '/api/v1/nodes');

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

// counters returns every counter ({counters: [...]}).
export const counters = () => call('GET', '/api/v1/counters');

// liveURL is the server-sent events address of a live query.
export function liveURL({pattern, where, stream}) {
  const p = new URLSearchParams({pattern});
  if (where) p.set('where', where);
  if (stream) p.set('stream', stream);
  return `/api/v1/query/live?${p}`;
}

// whereColumn finds the column in a predicate error ("where: ... at column 6"),
// or returns 0 when the message names none.
export function whereColumn(message) {
  const m = /^where:.*\bcolumn (\d+)/s.exec(message || '');
  return m ? Number(m[1]) : 0;
}
