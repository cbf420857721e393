// The fleet poller: every two seconds, whatever page is open, it asks the hub for
// one small page of the node list, GET /api/v1/nodes?sort=rate&limit=10: the ten
// fastest nodes, and totals over the whole fleet (the API adds them to every
// page). Nothing here grows with the fleet: each poll costs one request of ten
// rows, and the history is at most ten minutes of polls of ten figures each.
//
// Rates are the hub's own: totals.events_per_s for the fleet and events_per_s per
// node, averages that decay with a time constant of about 30 s. The hub sees every
// event arrive, so it needs no successive full lists, and the fleet line and the
// node lines of the chart are the same kind of figure: the fleet total is the sum
// of every node's rate.
import * as api from './api.js';

const INTERVAL_MS = 2000;
const KEEP_S = 600;
// The chart draws CHART nodes. A charted node keeps its line for as long as it
// stays among the TRACK fastest, so that nodes of about the same rate do not
// trade places in the chart at every poll.
const CHART = 5;
const TRACK = 10;

const samples = []; // {t: unix seconds, total: events/s, rates: Map node → events/s of the TRACK fastest}
const listeners = new Set();
let charted = []; // the nodes drawn in the chart, in the order they got a line
let latest = {totals: null, top: [], t: 0, error: null};
let timer = 0;
let started = false;

// state returns the last poll: {totals (the API's fleet totals, or null before the
// first answer), top (the fastest nodes' records, fastest first), t (unix
// seconds), error (ApiError or null)}. After a failed poll, totals and top are
// those of the last answer.
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

async function poll() {
  const t = Date.now() / 1000;
  try {
    const body = await api.nodes({sort: 'rate', limit: TRACK});
    const top = (body && body.nodes) || [];
    const totals = (body && body.totals) || null;
    samples.push({t, total: totals ? totals.events_per_s : null, rates: new Map(top.map((n) => [n.node, n.events_per_s]))});
    while (samples.length && samples[0].t < t - KEEP_S) samples.shift();
    chooseCharted(top);
    latest = {totals, top, t, error: null};
  } catch (err) {
    latest = {...latest, t, error: err};
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

// chooseCharted keeps the charted nodes that are still among the fastest and
// fills the free lines with the fastest others. A node with no events in the
// last minutes (a rate of 0) gets no line.
function chooseCharted(top) {
  const moving = top.filter((n) => n.events_per_s > 0).map((n) => n.node);
  const keep = charted.filter((n) => moving.includes(n));
  for (const n of moving) {
    if (keep.length >= CHART) break;
    if (!keep.includes(n)) keep.push(n);
  }
  charted = keep;
}

// series returns the throughput chart's lines: labels ("All nodes", then the
// charted nodes) and uPlot data [times, fleet rate, rate of each charted node],
// one point per poll, null where a figure is unknown (a node was not among the
// fastest at that poll).
export function series() {
  const xs = samples.map((s) => s.t);
  const total = samples.map((s) => s.total);
  const nodes = charted.map((n) => samples.map((s) => (s.rates.has(n) ? s.rates.get(n) : null)));
  return {labels: ['All nodes', ...charted], data: [xs, total, ...nodes]};
}
