// The query console's aggregate mode: a form for POST /api/v1/aggregate
// (pattern, where, stream, from, to, window, group by, aggregates), then the
// per-window verdict strip, a chart of one chosen aggregate per group over
// time, and the same figures as a table. The form lives in the address
// (#/query?mode=aggregate&…&chart=…), so a reload runs it again.
import * as api from '../api.js';
import * as format from '../format.js';
import {MAX_LINES, figuresTable, lineChart, series, verdictStrip} from '../aggchart.js';
import {h, field, replace} from '../dom.js';
import {submitToAddress} from './common.js';
import {whereError} from './events.js';
import {patternBuilder} from './pattern.js';

const DEFAULTS = {from: '-1h', to: 'now', window: '1m', aggregates: 'count'};

// shortDuration drops the zero units Go writes: 1m0s is 1m, 1h0m0s is 1h.
function shortDuration(d) {
  return String(d || '').replace(/([a-z])0s$/, '$1').replace(/([a-z])0m$/, '$1');
}

// splitList reads a comma-separated field.
function splitList(s) {
  return (s || '').split(',').map((x) => x.trim()).filter(Boolean);
}

// aggregateView mounts the aggregate mode into box and returns {update(params),
// destroy()}.
export function aggregateView(box, params) {
  const builder = patternBuilder(params.get('pattern') || 'all');
  const input = (id, attrs = {}) => h('input', {type: 'text', id, autocomplete: 'off', spellcheck: 'false', ...attrs});
  const where = input('a-where', {class: 'code', placeholder: 'temp > 30 && site == "north"'});
  const whereErr = h('div', {id: 'a-where-error', class: 'where-error', hidden: true});
  const stream = input('a-stream', {placeholder: 'all streams'});
  const from = input('a-from', {list: 'a-times', placeholder: DEFAULTS.from});
  const to = input('a-to', {list: 'a-times', placeholder: DEFAULTS.to});
  const win = input('a-window', {list: 'a-windows', placeholder: DEFAULTS.window});
  const groupBy = input('a-group-by', {class: 'code', placeholder: 'node, site'});
  const aggs = input('a-aggregates', {class: 'code', placeholder: 'count, avg(temp), p95(temp)'});
  const chartOf = h('select', {id: 'a-chart'});
  const formError = h('p', {id: 'a-form-error', class: 'error', role: 'alert', hidden: true});
  const timeHint = 'RFC 3339, or an offset from now: -15m, -2h, -1d.';
  const form = h('form', {id: 'aggregate-form', class: 'panel', novalidate: true, 'aria-labelledby': 'query-h'},
    builder.el,
    h('div', {class: 'grid'},
      h('div', {class: 'field wide'},
        h('label', {for: where.id}, 'Where'), where,
        h('small', {id: 'a-where-hint', class: 'hint'}, 'Only the events this expression matches are aggregated. Empty: every event.'),
        whereErr),
      field('Stream', stream, 'Empty means every stream.'),
      field('From', from, `${timeHint} Empty: ${DEFAULTS.from}.`),
      field('To (exclusive)', to, `${timeHint} Empty: ${DEFAULTS.to}.`),
      field('Window', win, 'Tumbling windows aligned to the epoch: 10s, 1m, 5m, 1h, 1d.'),
      field('Group by', groupBy, 'Comma-separated: node, stream or data fields (gps.zone). Empty: one group.'),
      field('Aggregates', aggs, 'Comma-separated: count, sum, min, max, avg, p50, p90, p95, p99 of a numeric field, as avg(temp).'),
      field('Chart', chartOf, 'The aggregate drawn, one line per group.')),
    h('datalist', {id: 'a-times'}, ['-15m', '-1h', '-6h', '-24h', 'now'].map((v) => h('option', {value: v}))),
    h('datalist', {id: 'a-windows'}, ['10s', '1m', '5m', '15m', '1h', '1d'].map((v) => h('option', {value: v}))),
    h('div', {class: 'actions'}, h('button', {type: 'submit', class: 'primary'}, 'Run aggregate')),
    formError);
  where.setAttribute('aria-describedby', 'a-where-hint a-where-error');
  const results = h('section', {id: 'agg-results', 'aria-labelledby': 'agg-results-h', hidden: true});
  box.append(form, results);

  let chart = null;
  let answer = null;
  let chosen = '';
  let seq = 0;

  function fillChartOptions(selected) {
    const list = splitList(aggs.value || DEFAULTS.aggregates);
    chosen = list.includes(selected) ? selected : list[0] || 'count';
    replace(chartOf, list.map((a) => h('option', {value: a, selected: a === chosen}, a)));
    chartOf.value = chosen;
  }

  function readForm() {
    const p = builder.value();
    if (p.error) return {error: p.error};
    for (const [name, el] of [['From', from], ['To', to]]) {
      const t = format.parseTime(el.value);
      if (t.error) return {error: `${name}: ${t.error}`};
    }
    const q = new URLSearchParams({mode: 'aggregate', pattern: p.pattern});
    const set = (k, el, def = '') => {
      const v = el.value.trim() || def;
      if (v) q.set(k, v);
    };
    set('where', where);
    set('stream', stream);
    set('from', from, DEFAULTS.from);
    set('to', to, DEFAULTS.to);
    set('window', win, DEFAULTS.window);
    set('group_by', groupBy);
    set('aggregates', aggs, DEFAULTS.aggregates);
    q.set('chart', chartOf.value || chosen);
    return {params: q};
  }

  function fillForm(p) {
    builder.set(p.get('pattern') || 'all');
    where.value = p.get('where') || '';
    stream.value = p.get('stream') || '';
    from.value = p.get('from') || '';
    to.value = p.get('to') || '';
    win.value = p.get('window') || '';
    groupBy.value = p.get('group_by') || '';
    aggs.value = p.get('aggregates') || '';
    fillChartOptions(p.get('chart') || '');
  }

  function showFormError(msg) {
    formError.hidden = !msg;
    formError.textContent = msg || '';
  }

  aggs.addEventListener('change', () => fillChartOptions(chartOf.value));
  chartOf.addEventListener('change', () => {
    chosen = chartOf.value;
    // Another line to draw of the same answer: no new request, and the
    // address follows without running the query again.
    const p = new URLSearchParams(location.hash.replace(/^#\/query\??/, ''));
    if (p.get('mode') === 'aggregate') {
      p.set('chart', chosen);
      history.replaceState(null, '', `#/query?${p}`);
    }
    if (answer) render();
  });
  submitToAddress(form, readForm, showFormError, (params) => run(params));

  async function run(p) {
    if (!p.get('pattern')) return;
    const t0 = format.parseTime(p.get('from') || DEFAULTS.from);
    const t1 = format.parseTime(p.get('to') || DEFAULTS.to);
    if (t0.error || t1.error) {
      showFormError(t0.error || t1.error);
      return;
    }
    const req = {pattern: p.get('pattern'), where: p.get('where') || '', stream: p.get('stream') || '', from: t0.value, to: t1.value,
      window: p.get('window') || DEFAULTS.window, group_by: splitList(p.get('group_by')),
      aggregates: splitList(p.get('aggregates') || DEFAULTS.aggregates)};
    const my = ++seq;
    whereErr.hidden = true;
    where.removeAttribute('aria-invalid');
    showFormError('');
    results.setAttribute('aria-busy', 'true');
    let a;
    try {
      a = await api.aggregate(req);
    } catch (err) {
      if (my !== seq) return;
      results.removeAttribute('aria-busy');
      results.hidden = true;
      if (err.status === 400 && /^where:/.test(err.message)) whereError(whereErr, where, err.message);
      else showFormError(err.message);
      return;
    }
    if (my !== seq) return;
    results.removeAttribute('aria-busy');
    answer = a;
    render();
  }

  function render() {
    const a = answer;
    const s = series(a, chosen);
    const windows = a.windows || [];
    if (chart) chart.destroy();
    chart = lineChart(`${chosen} per ${shortDuration(a.window)} window, one line per group${s.groups > MAX_LINES ? ` (the first ${MAX_LINES} of ${format.int(s.groups)} groups)` : ''}`,
      `Line chart of ${chosen} over ${format.int(windows.length)} windows for ${format.int(s.labels.length)} groups; the table below lists the figures.`);
    const details = h('details', {class: 'figures', id: 'agg-figures'},
      h('summary', {}, 'The chart\u2019s figures as a table'));
    // Built when opened: a day of minutes is 1,440 rows.
    details.addEventListener('toggle', () => {
      if (details.open && details.children.length === 1) details.append(figuresTable(a, chosen, s, {id: 'agg-table'}));
    });
    results.hidden = false;
    replace(results,
      h('h2', {id: 'agg-results-h'}, 'Aggregate'),
      h('dl', {class: 'stats small'},
        h('div', {class: 'stat', dataset: {stat: 'windows'}}, h('dt', {}, 'Windows'), h('dd', {}, format.int(windows.length))),
        h('div', {class: 'stat', dataset: {stat: 'groups'}}, h('dt', {}, 'Groups'), h('dd', {}, format.int(s.groups))),
        h('div', {class: 'stat', dataset: {stat: 'certain'}, title: 'Certain: no event still to arrive can change a window\u2019s verdict'},
          h('dt', {}, 'Verdicts'),
          h('dd', {id: 'agg-certain', class: a.certain ? 'certain-yes' : 'certain-no', dataset: {certain: String(!!a.certain)}},
            a.certain ? '✓ certain' : '? may change')),
        h('div', {class: 'stat'}, h('dt', {}, 'Scanned'), h('dd', {}, format.int(a.scanned))),
        h('div', {class: 'stat'}, h('dt', {}, 'Took'), h('dd', {}, `${format.int(a.took_ms)} ms`))),
      verdictStrip(a, 'agg-strip'),
      chart.el,
      details);
    chart.update(s.xs, s.labels, s.ys, chosen);
  }

  fillForm(params);
  if (params.get('pattern')) run(params);

  return {
    update(p) {
      fillForm(p);
      run(p);
    },
    destroy() {
      seq++;
      builder.destroy();
      if (chart) chart.destroy();
    },
  };
}
