// Charts of aggregate answers (POST or GET /api/v1/aggregate): one line per
// group of one aggregate over the windows, the per-window verdict strip, and
// the table that says the same in words. uPlot draws (vendor/uPlot.iife.min.js).
import * as format from './format.js';
import {chartFrame, color} from './chart.js';
import {h} from './dom.js';

// MAX_LINES is the most groups one chart draws; the table lists the rest.
export const MAX_LINES = 10;

// groupLabel names a group by its key: "node=a, site=north", or "all events"
// for the one group of an answer without group_by.
export function groupLabel(key) {
  const parts = Object.entries(key || {}).map(([k, v]) => `${k}=${v === null ? 'null' : typeof v === 'object' ? JSON.stringify(v) : v}`);
  return parts.length ? parts.join(', ') : 'all events';
}

// series turns an answer into uPlot data for aggregate agg: the windows'
// starts (seconds) and one array per group, null where the group has no
// value in a window. It returns {xs, labels, ys, groups} with the groups in
// order of first appearance, at most MAX_LINES of them, and groups the
// number there are.
export function series(answer, agg) {
  const windows = answer.windows || [];
  const xs = windows.map((w) => Date.parse(w.start) / 1000);
  const index = new Map();
  const labels = [];
  const ys = [];
  let groups = 0;
  windows.forEach((w, i) => {
    for (const g of w.groups || []) {
      const label = groupLabel(g.key);
      let j = index.get(label);
      if (j === undefined) {
        groups++;
        if (labels.length >= MAX_LINES) continue;
        j = labels.length;
        index.set(label, j);
        labels.push(label);
        ys.push(new Array(windows.length).fill(null));
      }
      const v = g[agg];
      ys[j][i] = typeof v === 'number' ? v : null;
    }
  });
  return {xs, labels, ys, groups};
}

// lineChart makes a figure with a caption and a chart of labelled lines over
// time; it returns {el, update(xs, labels, ys, unit), destroy()}.
export function lineChart(caption, summary) {
  const frame = chartFrame(caption, summary, () => plot);
  const {el, holder} = frame;
  let plot = null;
  let key = '';

  function build(labels, unit) {
    if (plot) plot.destroy();
    plot = new window.uPlot({
      ...frame.size(),
      scales: {x: {time: true}},
      axes: [
        {stroke: '#4b5563', grid: {stroke: '#e5e7eb'}},
        {stroke: '#4b5563', grid: {stroke: '#e5e7eb'}, label: unit, size: 60},
      ],
      series: [
        {label: 'Window', value: (u, v) => (v == null ? '–' : new Date(v * 1000).toLocaleString())},
        ...labels.map((l, i) => ({
          label: l,
          stroke: color(i),
          width: 2,
          spanGaps: false,
          points: {size: 5, show: (u, si, i0, i1) => i1 - i0 < 60},
          value: (u, v) => format.number(v),
        })),
      ],
      legend: {show: true},
      cursor: {drag: {x: false, y: false}},
    }, [[], ...labels.map(() => [])], holder);
  }

  return {
    el,
    update(xs, labels, ys, unit) {
      const k = `${unit}\u0000${labels.join('\u0000')}`;
      if (!plot || k !== key) {
        key = k;
        build(labels, unit);
      }
      plot.setData([xs, ...ys]);
      // How many windows and lines the chart shows, for tests and the curious.
      holder.dataset.points = String(xs.length);
      holder.dataset.series = String(labels.length);
    },
    destroy() {
      frame.disconnect();
      if (plot) plot.destroy();
      plot = null;
    },
  };
}

// verdictOf is a window's verdict in one word: holds, not (holds is false
// and certain) or uncertain (false, and events still to arrive may change it).
export function verdictOf(w) {
  if (w.holds) return 'holds';
  return w.certain ? 'not' : 'uncertain';
}

const VERDICT_TEXT = {holds: 'holds', not: 'does not hold', uncertain: 'does not hold yet (may change)'};

// verdictStrip shows one cell per window, coloured and marked by its verdict
// (a symbol as well as a colour), with a summary for screen readers; the
// table beside the chart says each window's verdict in words.
export function verdictStrip(answer, id) {
  const windows = answer.windows || [];
  const counts = {holds: 0, not: 0, uncertain: 0};
  const cells = windows.map((w) => {
    const v = verdictOf(w);
    counts[v]++;
    return h('span', {class: `strip-cell ${v}`, dataset: {verdict: v, start: w.start},
      title: `${format.time(w.start)}: ${VERDICT_TEXT[v]}`});
  });
  const summary = `${format.int(windows.length)} windows: ${format.int(counts.holds)} hold, ` +
    `${format.int(counts.not)} do not, ${format.int(counts.uncertain)} uncertain`;
  return h('figure', {class: 'strip-figure'},
    h('figcaption', {}, `Verdict per window (${answer.pattern}): `,
      h('span', {class: 'strip-key holds'}, '✓ holds'), ' ',
      h('span', {class: 'strip-key not'}, '✗ does not'), ' ',
      h('span', {class: 'strip-key uncertain'}, '? uncertain')),
    h('div', {id, class: 'strip', role: 'img', 'aria-label': summary, dataset: {holds: String(counts.holds),
      not: String(counts.not), uncertain: String(counts.uncertain)}}, cells),
    h('p', {class: 'muted small'}, summary + '.'));
}

// figuresTable lists, per window, its verdict and the value of agg for each
// charted group: the chart's content as a table. At most rows windows, the
// latest, are listed.
export function figuresTable(answer, agg, s, {id, rows = 500}) {
  const windows = answer.windows || [];
  const from = Math.max(0, windows.length - rows);
  const cut = from > 0 ? ` (the last ${format.int(rows)} of ${format.int(windows.length)} windows)` : '';
  return h('div', {class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': `${agg} per window`},
    h('table', {id},
      h('caption', {}, `${agg} per window and group${cut}`),
      h('thead', {}, h('tr', {},
        h('th', {scope: 'col'}, 'Window start'),
        h('th', {scope: 'col'}, 'Verdict'),
        s.labels.map((l) => h('th', {scope: 'col', class: 'num'}, l)))),
      h('tbody', {}, windows.slice(from).map((w, k) => h('tr', {dataset: {start: w.start}},
        h('th', {scope: 'row'}, format.time(w.start)),
        h('td', {}, VERDICT_TEXT[verdictOf(w)]),
        s.ys.map((y) => h('td', {class: 'num'}, format.number(y[from + k]))))))));
}
