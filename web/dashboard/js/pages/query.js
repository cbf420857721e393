// The query console: a form for every field of POST /api/v1/query, the verdict
// with its per-node matches, and the matches with paging. The form's fields live
// in the address (#/query?pattern=…&where=…), so a query can be shared and a
// reload runs it again.
import * as api from '../api.js';
import * as format from '../format.js';
import {h, field, replace} from '../dom.js';
import {patternBuilder} from './pattern.js';
import {eventsTable, whereError} from './events.js';

export default {
  title: () => 'Query',
  mount(main, {params}) {
    const builder = patternBuilder(params.get('pattern') || 'all');
    const where = h('input', {type: 'text', id: 'q-where', class: 'code', autocomplete: 'off', spellcheck: 'false',
      placeholder: 'temp > 30 && site == "north"'});
    const whereErr = h('div', {id: 'q-where-error', class: 'where-error', hidden: true});
    const stream = h('input', {type: 'text', id: 'q-stream', autocomplete: 'off', spellcheck: 'false', placeholder: 'all streams'});
    const from = h('input', {type: 'text', id: 'q-from', autocomplete: 'off', list: 'q-times', placeholder: '-15m'});
    const to = h('input', {type: 'text', id: 'q-to', autocomplete: 'off', list: 'q-times', placeholder: 'now'});
    const limit = h('input', {type: 'number', id: 'q-limit', min: '1', max: '10000', step: '1', value: '100'});
    const count = h('input', {type: 'checkbox', id: 'q-count', checked: true});
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
        h('div', {class: 'field check'}, count, h('label', {for: count.id}, 'Count every match in the range'))),
      h('datalist', {id: 'q-times'}, ['-5m', '-15m', '-1h', '-24h', 'now'].map((v) => h('option', {value: v}))),
      h('div', {class: 'actions'}, h('button', {type: 'submit', class: 'primary'}, 'Run query')),
      formError);
    where.setAttribute('aria-describedby', 'q-where-hint q-where-error');

    const results = h('section', {id: 'results', 'aria-labelledby': 'results-h', hidden: true});
    main.append(
      h('h1', {id: 'query-h', tabindex: '-1'}, 'Query console'),
      form,
      results);

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

    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const r = readForm();
      if (r.error) {
        showFormError(r.error);
        return;
      }
      showFormError('');
      const hash = `#/query?${r.params}`;
      // The address carries the query; the router calls update, which runs it.
      if (location.hash === hash) run(r.params);
      else location.hash = hash;
    });

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

    function render() {
      const a = page.answer;
      const nodes = Object.entries(a.nodes || {}).sort(([x], [y]) => (x < y ? -1 : 1));
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
              : 'holds when every node in scope has at least one match.')),
        h('dl', {class: 'stats small'},
          h('div', {class: 'stat', dataset: {stat: 'count'}}, h('dt', {}, 'Matches in range'), h('dd', {id: 'q-count-value'}, base.count ? format.int(a.count) : 'not counted')),
          h('div', {class: 'stat'}, h('dt', {}, 'On this page'), h('dd', {}, format.int(matches.length))),
          h('div', {class: 'stat'}, h('dt', {}, 'Scanned'), h('dd', {}, format.int(a.scanned))),
          h('div', {class: 'stat'}, h('dt', {}, 'Took'), h('dd', {}, `${format.int(a.took_ms)} ms`))),
        h('div', {class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': 'Matches per node'},
          h('table', {id: 'q-nodes'},
            h('caption', {}, 'Matches per node in scope'),
            h('thead', {}, h('tr', {}, h('th', {scope: 'col'}, 'Node'), h('th', {scope: 'col', class: 'num'}, 'Matched'), h('th', {scope: 'col'}, 'Has a match'))),
            h('tbody', {}, nodes.length ? nodes.map(([n, v]) => h('tr', {dataset: {node: n}},
              h('th', {scope: 'row'}, h('a', {href: `#/node/${encodeURIComponent(n)}`}, n)),
              h('td', {class: 'num'}, format.int(v && v.matched)),
              h('td', {}, v && v.matched > 0 ? 'yes' : 'no')))
              : h('tr', {}, h('td', {colspan: 3, class: 'empty'}, 'No node in scope.'))))),
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
  },
};
