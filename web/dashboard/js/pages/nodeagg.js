// The node page's charts of the last hour by the minute, from the hub's
// GET /api/v1/aggregate of single(node): events per minute, and the average
// of one numeric field per minute. The field is the reader's choice among the
// numeric fields of the node's recent events, by default the first seen.
import * as api from '../api.js';
import * as format from '../format.js';
import {lineChart} from '../aggchart.js';
import {h, field, replace} from '../dom.js';

const REFRESH_MS = 10000;
const HOUR_MS = 3600e3;
const MINUTE_MS = 60e3;

// numericPaths lists the data paths (gps.lat for nested ones) that hold a
// number in some of events, in order of first appearance.
export function numericPaths(events) {
  const out = [];
  const walk = (obj, prefix, depth) => {
    for (const [k, v] of Object.entries(obj)) {
      const path = prefix ? `${prefix}.${k}` : k;
      // Envelope names are not data fields to aggregates; field paths have
      // no dots or brackets in their keys.
      if (!prefix && ['node', 'stream', 'ts', 'seq'].includes(k)) continue;
      if (/[.,()"'[\]\s]/.test(k)) continue;
      if (typeof v === 'number' && !out.includes(path)) out.push(path);
      else if (v && typeof v === 'object' && !Array.isArray(v) && depth < 3) walk(v, path, depth + 1);
    }
  };
  for (const ev of events) {
    if (ev.data && typeof ev.data === 'object' && !Array.isArray(ev.data)) walk(ev.data, '', 0);
  }
  return out;
}

// perMinute returns {el, seen(events), destroy()}: seen offers the node's
// recent events, for the choice of field.
export function perMinute(node) {
  const select = h('select', {id: 'node-agg-field'}, h('option', {value: ''}, '(no numeric field yet)'));
  const counts = lineChart(`Events per minute from ${node} over the last hour, by event time`,
    `Line chart of the events of ${node} per minute over the last hour; the table below lists the figures.`);
  const avgs = lineChart(`Average per minute over the last hour`,
    `Line chart of the average per minute of the chosen field of ${node} over the last hour; the table below lists the figures.`);
  counts.el.id = 'node-count-chart';
  avgs.el.id = 'node-avg-chart';
  const table = h('div', {id: 'node-agg-table-box'});
  const note = h('p', {class: 'muted', id: 'node-agg-note'}, 'Loading…');
  const el = h('div', {class: 'node-agg'},
    field('Average of', select, 'A numeric field of this node\u2019s events.'),
    note, counts.el, avgs.el,
    h('details', {class: 'figures', id: 'node-agg-figures'}, h('summary', {}, 'The charts\u2019 figures as a table'), table));
  let fields = [];
  let chosen = '';
  let alive = true;
  let timer = 0;
  let seq = 0;
  select.addEventListener('change', () => {
    chosen = select.value;
    load();
  });

  function seen(events) {
    const found = numericPaths(events);
    const merged = fields.concat(found.filter((f) => !fields.includes(f)));
    if (merged.length === fields.length) return;
    fields = merged;
    const first = !chosen;
    if (first) chosen = fields[0];
    replace(select, fields.map((f) => h('option', {value: f, selected: f === chosen}, f)));
    select.value = chosen;
    if (first) load();
  }

  async function load() {
    clearTimeout(timer);
    const my = ++seq;
    // Whole minutes: the last hour up to the end of the current minute.
    const end = Math.ceil((Date.now() + 1) / MINUTE_MS) * MINUTE_MS;
    const aggs = ['count'];
    if (chosen) aggs.push(`avg(${chosen})`);
    let a;
    try {
      a = await api.aggregate({pattern: `single(${node})`, from: new Date(end - HOUR_MS).toISOString(), to: new Date(end).toISOString(),
        window: '1m', aggregates: aggs}, {get: true});
    } catch (err) {
      if (my === seq && alive) note.textContent = `Could not load the minutes: ${err.message}`;
      if (alive) timer = setTimeout(load, REFRESH_MS);
      return;
    }
    if (my !== seq || !alive) return;
    render(a, aggs);
    timer = setTimeout(load, REFRESH_MS);
  }

  function render(a, aggs) {
    const windows = a.windows || [];
    const xs = windows.map((w) => Date.parse(w.start) / 1000);
    const value = (w, agg) => {
      const g = (w.groups || [])[0];
      return g && typeof g[agg] === 'number' ? g[agg] : null;
    };
    const count = windows.map((w) => value(w, 'count') ?? 0);
    const total = count.reduce((x, y) => x + y, 0);
    counts.update(xs, [node], [count], 'events/min');
    const avgName = aggs[1];
    avgs.el.hidden = !avgName;
    if (avgName) avgs.update(xs, [avgName], [windows.map((w) => value(w, avgName))], avgName);
    note.textContent = `${format.int(total)} events in the last hour, ${format.int(windows.length)} one-minute windows. Updated ${format.time(new Date().toISOString())}.`;
    replace(table, h('div', {class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': 'Per minute'},
      h('table', {id: 'node-agg-table'},
        h('caption', {}, `${node} per minute over the last hour`),
        h('thead', {}, h('tr', {}, h('th', {scope: 'col'}, 'Minute'), h('th', {scope: 'col', class: 'num'}, 'Events'),
          avgName ? h('th', {scope: 'col', class: 'num'}, avgName) : null)),
        h('tbody', {}, windows.map((w, i) => h('tr', {dataset: {start: w.start}},
          h('th', {scope: 'row'}, format.time(w.start)),
          h('td', {class: 'num'}, format.int(count[i])),
          avgName ? h('td', {class: 'num'}, format.number(value(w, avgName))) : null))))));
  }

  load();
  return {
    el,
    seen,
    destroy() {
      alive = false;
      clearTimeout(timer);
      counts.destroy();
      avgs.destroy();
    },
  };
}
