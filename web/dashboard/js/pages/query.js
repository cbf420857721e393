// The query console: a form for every field of POST /api/v1/query, the verdict
// with its per-node matches, and the matches with paging. The form's fields live
// in the address (#/query?pattern=…&where=…), so a query can be shared and a
// reload runs it again. Its aggregate mode (#/query?mode=aggregate&…) is in
// aggregate.js.
import * as api from '../api.js';
import * as format from '../format.js';
import {h, field, replace} from '../dom.js';
import {aggregateView} from './aggregate.js';
import {submitToAddress} from './common.js';
import {patternBuilder} from './pattern.js';
import {eventsTable, whereError} from './events.js';

// NODE_ROWS is the most rows of the per-node table.
const NODE_ROWS = 50;

const MODES = [['events', 'Events', 'the matches and the verdict over the range'], ['aggregate', 'Aggregates', 'windows, groups and a verdict per window']];

const modeOf = (p) => (p.get('mode') === 'aggregate' ? 'aggregate' : 'events');

export default {
  title: () => 'Query',
  mount(main, {params}) {
    let mode = modeOf(params);
    const radios = MODES.map(([m, label, hint]) => h('span', {class: 'radio'},
      h('input', {type: 'radio', name: 'q-mode', id: `q-mode-${m}`, value: m, checked: m === mode,
        onchange: () => {
          location.hash = m === 'aggregate' ? '#/query?mode=aggregate' : '#/query';
        }}),
      h('label', {for: `q-mode-${m}`}, label, ' ', h('small', {}, `(${hint})`))));
    const box = h('div', {id: 'q-mode-box'});
    main.append(
      h('h1', {id: 'query-h', tabindex: '-1'}, 'Query console'),
      h('fieldset', {class: 'mode-switch', id: 'q-mode'}, h('legend', {}, 'Mode'), radios),
      box);
    const mountMode = (p) => (mode === 'aggregate' ? aggregateView(box, p) : eventsView(box, p));
    let view = mountMode(params);
    return {
      update(p) {
        if (modeOf(p) === mode) {
          view.update(p);
          return;
        }
        view.destroy();
        box.replaceChildren();
        mode = modeOf(p);
        for (const r of main.querySelectorAll('input[name="q-mode"]')) r.checked = r.value === mode;
        view = mountMode(p);
      },
      destroy() {
        view.destroy();
      },
    };
  },
};

// eventsView mounts the events mode into main and returns {update(params),
// destroy()}.
function eventsView(main, params) {
  const builder = patternBuilder(params.get('pattern') || 'all');
  const where = h('input', {type: 'text', id: 'q-where', class: 'code', autocomplete: 'off', spellcheck: 'false',
    placeholder: 'temp > 30 && site == "north"'});
  const whereErr = h('div', {id: 'q-where-error', class: 'where-error', hidden: true});
  const stream = h('input', {type: 'text', id: 'q-stream', autocomplete: 'off', spellcheck: 'false', placeholder: 'all streams'});
  const from = h('input', {type: 'text', id: 'q-from', autocomplete: 'off', list: 'q-times', placeholder: '-15m'});
  const to = h('input', {type: 'text', id: 'q-to', autocomplete: 'off', list: 'q-times', placeholder: 'now'});
  const limit = h('input', {type: 'number', id: 'q-limit', min: '1', max: '10000', step: '1', value: '100'});
  const count = h('input', {type: 'checkbox', id: 'q-count', checked: true});
  const strong = h('input', {type: 'checkbox', id: 'q-strong'});
  const formError = h('p', {id: 'q-form-error', class: 'error', role: 'alert', hidden: true});
  const timeHint = 'RFC 3339, or an offset from now: -15m, -2h, -1d. Empty: open.';
  const form = h('form', {id: 'query-form', class: 'panel', novalidate: true, 'aria-labelledby': 'query-h'},
    builder.el,
    h('div', {class: 'grid'},
      h('div', {class: 'field wide'},
        h('label', {for: where.id}, 'Where'),
        where,
        h('small', {id: 'q-where-hint', class: 'hint'}, 'An expression over the event: data fields by name (gps.lat for nested ones), and node, stream, seq, ts. Empty matches every event.'),
        whereErr),
      field('Stream', stream, 'Empty means every stream.'),
      field('From', from, timeHint),
      field('To (exclusive)', to, timeHint),
      field('Limit', limit, 'Matches per page, 1 to 10000.'),
      h('div', {class: 'field check'}, count, h('label', {for: count.id}, 'Count every match in the range')),
      h('div', {class: 'field check'}, strong, h('label', {for: strong.id}, 'Strong: first wait (up to 5 s) until the hub holds everything the online nodes have acknowledged'))),
    h('datalist', {id: 'q-times'}, ['-5m', '-15m', '-1h', '-24h', 'now'].map((v) => h('option', {value: v}))),
    h('div', {class: 'actions'}, h('button', {type: 'submit', class: 'primary'}, 'Run query')),
    formError);
  where.setAttribute('aria-describedby', 'q-where-hint q-where-error');

  const results = h('section', {id: 'results', 'aria-labelledby': 'results-h', hidden: true});
  main.append(form, results);

  let base = null; // the running query, with resolved times
  let cursors = []; // the cursors of the pages before the current one
  let page = {after: '', answer: null};
  let seq = 0; // drops answers to superseded requests

  function readForm() {
    const p = builder.value();
    if (p.error) return {error: p.error};
    const l = limit.value.trim();
    if (l !== '' && !(/^\d+$/.test(l) && Number(l) >= 1 && Number(l) <= 10000)) return {error: 'Limit must be a whole number from 1 to 10000.'};
    for (const [name, input] of [['From', from], ['To', to]]) {
      const t = format.parseTime(input.value);
      if (t.error) return {error: `${name}: ${t.error}`};
    }
    where.value = where.value.trim();
    const q = new URLSearchParams({pattern: p.pattern});
    if (where.value.trim()) q.set('where', where.value.trim());
    if (stream.value.trim()) q.set('stream', stream.value.trim());
    if (from.value.trim()) q.set('from', from.value.trim());
    if (to.value.trim()) q.set('to', to.value.trim());
    q.set('limit', l || '100');
    q.set('count', count.checked ? '1' : '0');
    if (strong.checked) q.set('consistency', 'strong');
    return {params: q};
  }

  function fillForm(params) {
    builder.set(params.get('pattern') || 'all');
    where.value = params.get('where') || '';
    stream.value = params.get('stream') || '';
    from.value = params.get('from') || '';
    to.value = params.get('to') || '';
    limit.value = params.get('limit') || '100';
    count.checked = params.get('count') !== '0';
    strong.checked = params.get('consistency') === 'strong';
  }

  function showFormError(msg) {
    formError.hidden = !msg;
    formError.textContent = msg || '';
  }

  function clearWhereError() {
    whereErr.hidden = true;
    whereErr.replaceChildren();
    where.removeAttribute('aria-invalid');
  }

  submitToAddress(form, readForm, showFormError, (params) => run(params));

  function run(params) {
    if (!params.get('pattern')) return;
    const t0 = format.parseTime(params.get('from') || '');
    const t1 = format.parseTime(params.get('to') || '');
    if (t0.error || t1.error) {
      showFormError(t0.error || t1.error);
      return;
    }
    base = {
      pattern: params.get('pattern'),
      where: params.get('where') || '',
      stream: params.get('stream') || '',
      from: t0.value,
      to: t1.value,
      limit: Number(params.get('limit') || 100),
      count: params.get('count') !== '0',
      consistency: params.get('consistency') === 'strong' ? 'strong' : '',
    };
    cursors = [];
    load('');
  }

  async function load(after) {
    const my = ++seq;
    clearWhereError();
    showFormError('');
    results.setAttribute('aria-busy', 'true');
    let answer;
    try {
      answer = await api.query({...base, after});
    } catch (err) {
      if (my !== seq) return;
      results.removeAttribute('aria-busy');
      // The answer of the previous query would read as this one's.
      results.hidden = true;
      if (err.status === 400 && /^where:/.test(err.message)) {
        whereError(whereErr, where, err.message);
      } else {
        showFormError(err.message);
      }
      return;
    }
    if (my !== seq) return;
    results.removeAttribute('aria-busy');
    page = {after, answer};
    render();
  }

  // certainty says whether events still to arrive could change the
  // verdict, and why: the incomplete nodes (offline, with a backlog or with
  // missing seqs).
  function certainty(a, all) {
    const open = all.filter(([, v]) => !(v && v.complete)).length;
    if (a.certain) {
      return h('p', {id: 'q-certain', dataset: {certain: 'true'}}, h('strong', {}, 'Certain: '),
        'no event still to arrive can change this verdict', open ? ` (${format.int(open)} incomplete node${open === 1 ? '' : 's'} cannot change it).` : '.');
    }
    return h('p', {id: 'q-certain', dataset: {certain: 'false'}}, h('strong', {}, 'Not certain: '),
      `${format.int(open)} node${open === 1 ? ' is' : 's are'} incomplete — offline, behind, or missing events — and what they have not sent could change it. `,
      'Ask again with consistency strong to wait for the online ones.');
  }

  function render() {
    const a = page.answer;
    const all = Object.entries(a.nodes || {});
    // A scope can be the whole fleet: the table lists at most NODE_ROWS
    // nodes, those without a match first (they decide the verdict of all and
    // multiple), then by name.
    const hit = (v) => (v && v.matched > 0 ? 1 : 0);
    const misses = all.filter(([, v]) => !hit(v)).length;
    const byName = ([x], [y]) => (x < y ? -1 : 1);
    const nodes = all.length <= NODE_ROWS ? all.sort(byName)
      : all.sort((p, q) => hit(p[1]) - hit(q[1]) || byName(p, q)).slice(0, NODE_ROWS);
    const any = base.pattern === 'any';
    const matches = a.matches || [];
    const pageNo = cursors.length + 1;
    const first = cursors.length === 0;
    const prev = h('button', {type: 'button', id: 'q-prev', disabled: first, onclick: () => load(cursors.pop() || '')}, '← Previous');
    const next = h('button', {type: 'button', id: 'q-next', disabled: !a.next, onclick: () => {
      cursors.push(page.after);
      load(a.next);
    }}, 'Next →');
    results.hidden = false;
    replace(results,
      h('h2', {id: 'results-h'}, 'Results'),
      h('div', {id: 'verdict', class: `verdict ${a.holds ? 'holds' : 'fails'}`, dataset: {holds: String(!!a.holds)}},
        h('p', {class: 'verdict-word'}, a.holds ? '✓ Holds' : '✗ Does not hold'),
        h('p', {}, h('code', {}, a.pattern || base.pattern), ': ',
          any ? 'holds when at least one node in scope has a match (the search may stop at the first such node).'
            : 'holds when every node in scope has at least one match.'),
        certainty(a, all)),
      h('dl', {class: 'stats small'},
        h('div', {class: 'stat', dataset: {stat: 'count'}}, h('dt', {}, 'Matches in range'), h('dd', {id: 'q-count-value'}, base.count ? format.int(a.count) : 'not counted')),
        h('div', {class: 'stat'}, h('dt', {}, 'On this page'), h('dd', {}, format.int(matches.length))),
        h('div', {class: 'stat'}, h('dt', {}, 'Scanned'), h('dd', {}, format.int(a.scanned))),
        h('div', {class: 'stat'}, h('dt', {}, 'Took'), h('dd', {}, `${format.int(a.took_ms)} ms`))),
      h('div', {class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': 'Matches per node'},
        h('table', {id: 'q-nodes'},
          h('caption', {id: 'q-nodes-caption'}, all.length <= NODE_ROWS ? 'Matches per node in scope'
            : `Matches per node: ${format.int(nodes.length)} of the ${format.int(all.length)} nodes in scope ` +
              `(${format.int(misses)} without a match${base.count ? ' in the range' : ' on this page'}), those without a match first`),
          h('thead', {}, h('tr', {}, h('th', {scope: 'col'}, 'Node'), h('th', {scope: 'col', class: 'num'}, 'Matched'), h('th', {scope: 'col'}, 'Has a match'),
            h('th', {scope: 'col'}, 'Complete'))),
          h('tbody', {}, nodes.length ? nodes.map(([n, v]) => h('tr', {dataset: {node: n, complete: String(!!(v && v.complete))}},
            h('th', {scope: 'row'}, h('a', {href: `#/node/${encodeURIComponent(n)}`}, n)),
            h('td', {class: 'num'}, format.int(v && v.matched)),
            h('td', {}, v && v.matched > 0 ? 'yes' : 'no'),
            h('td', {title: v && v.as_of ? `as of ${format.time(v.as_of)}` : 'no report from the node yet'},
              v && v.complete ? 'yes' : `no${v && v.pending ? ` (${format.int(v.pending)} pending)` : ''}`)))
            : h('tr', {}, h('td', {colspan: 4, class: 'empty'}, 'No node in scope.'))))),
      eventsTable(matches, {id: 'q-matches', caption: `Matches, page ${pageNo}, in merge order (time, node, epoch, seq)`, empty: 'No matches on this page.'}),
      h('nav', {class: 'pager', 'aria-label': 'Result pages'}, prev, h('span', {id: 'q-page'}, `Page ${pageNo}`), next));
  }

  if (params.get('pattern')) {
    fillForm(params);
    run(params);
  }

  return {
    update(p) {
      fillForm(p);
      run(p);
    },
    destroy() {
      seq++;
      builder.destroy();
    },
  };
}
