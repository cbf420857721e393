// The fleet poller: it asks the hub for /api/v1/nodes every two seconds, whatever
// page is open, and keeps the last ten minutes of answers so that the overview and
// node pages can chart events per second. The hub reports only running totals;
// rates are computed here, from successive polls.
import * as api from './api.js';

const INTERVAL_MS = 2000;
const KEEP_S = 600;
// Rates in tables average over this many seconds so that they do not jump about.
const SMOOTH_S = 10;

const samples = []; // {t: unix seconds, events: Map node → events}
const listeners = new Set();
let latest = {nodes: [], t: 0, error: null};
let timer = 0;
let started = false;

// state returns the last answer: {nodes, t (unix seconds), error (ApiError or null)}.
export function state() {
  return latest;
}

// subscribe calls fn after every poll (and once now, if a poll has happened) and
// returns the function that unsubscribes it.
export function subscribe(fn) {
  listeners.add(fn);
  if (latest.t) fn(latest);
  return () => listeners.delete(fn);
}

// start begins polling; calling it again does nothing.
export function start() {
  if (started) return;
  started = true;
  poll();
}

// refresh polls now instead of waiting for the next tick.
export function refresh() {
  clearTimeout(timer);
  return poll();
}

async function poll() {
  const t = Date.now() / 1000;
  try {
    const body = await api.nodes();
    const list = (body && body.nodes) || [];
    list.sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
    samples.push({t, events: new Map(list.map((n) => [n.node, n.events]))});
    while (samples.length && samples[0].t < t - KEEP_S) samples.shift();
    latest = {nodes: list, t, error: null};
  } catch (err) {
    latest = {nodes: latest.nodes, t, error: err};
  }
  for (const fn of listeners) {
    try {
      fn(latest);
    } catch (err) {
      console.error(err);
    }
  }
  clearTimeout(timer);
  timer = setTimeout(poll, INTERVAL_MS);
}

function rateBetween(a, b, node) {
  const ea = a.events.get(node);
  const eb = b.events.get(node);
  if (ea === undefined || eb === undefined || b.t <= a.t) return null;
  // A falling total means the hub's index was rebuilt: no rate for that step.
  if (eb < ea) return null;
  return (eb - ea) / (b.t - a.t);
}

// rate returns a node's events per second over about the last ten seconds, or
// null before two polls have answered.
export function rate(node) {
  if (samples.length < 2) return null;
  const last = samples[samples.length - 1];
  let first = samples[samples.length - 2];
  for (let i = samples.length - 2; i >= 0; i--) {
    first = samples[i];
    if (last.t - samples[i].t >= SMOOTH_S) break;
  }
  return rateBetween(first, last, node);
}

// totalRate is the sum of rate over the given nodes (null when none has one).
export function totalRate(nodes) {
  let sum = null;
  for (const n of nodes) {
    const r = rate(n);
    if (r !== null) sum = (sum || 0) + r;
  }
  return sum;
}

// series returns uPlot data for the given nodes: [times, rates of node 0, …], one
// point per poll interval, null where a rate is unknown.
export function series(nodes) {
  const xs = [];
  const ys = nodes.map(() => []);
  for (let i = 1; i < samples.length; i++) {
    xs.push(samples[i].t);
    nodes.forEach((n, j) => ys[j].push(rateBetween(samples[i - 1], samples[i], n)));
  }
  return [xs, ...ys];
}
