// Counters: every counter's value and each node's share of it, as a matrix with
// one row per counter and one column per node, refreshed every two seconds.
import * as api from '../api.js';
import * as format from '../format.js';
import {h, replace} from '../dom.js';

const INTERVAL_MS = 2000;

export default {
  title: () => 'Counters',
  mount(main) {
    const wrap = h('div', {class: 'table-wrap', tabindex: '0', role: 'region', 'aria-labelledby': 'counters-h'});
    const note = h('p', {class: 'muted', id: 'counters-note'}, 'Loading…');
    const err = h('p', {class: 'error', role: 'alert', hidden: true});
    main.append(
      h('h1', {id: 'counters-h', tabindex: '-1'}, 'Counters'),
      h('p', {}, 'Distributed counters: every edge adds to its own share, even while offline, and the hub merges the shares. ',
        'An edge changes a counter with ', h('code', {}, 'POST /api/v1/counters/NAME {"delta": N}'), ' on its local API.'),
      err, note, wrap);

    let timer = 0;
    let alive = true;

    async function poll() {
      try {
        const body = await api.counters();
        if (!alive) return;
        err.hidden = true;
        render((body && body.counters) || []);
        note.textContent = `Updated ${format.time(new Date().toISOString())}; refreshes every 2 s.`;
      } catch (e) {
        if (!alive) return;
        err.hidden = false;
        err.textContent = `Could not load counters: ${e.message}`;
      }
      if (alive) timer = setTimeout(poll, INTERVAL_MS);
    }

    function render(list) {
      list.sort((a, b) => (a.name < b.name ? -1 : 1));
      const nodes = [...new Set(list.flatMap((c) => Object.keys(c.nodes || {})))].sort();
      const rows = list.map((c) => h('tr', {dataset: {counter: c.name}},
        h('th', {scope: 'row'}, c.name),
        h('td', {class: 'num total', dataset: {value: String(c.value)}}, format.int(c.value)),
        nodes.map((n) => {
          const v = c.nodes ? c.nodes[n] : undefined;
          return h('td', {class: 'num', dataset: {node: n}}, v === undefined ? '–' : format.int(v));
        })));
      if (!rows.length) rows.push(h('tr', {}, h('td', {colspan: 2 + nodes.length, class: 'empty'}, 'No counters yet.')));
      replace(wrap, h('table', {id: 'counters-table'},
        h('caption', {}, 'Counter values, total and per node'),
        h('thead', {}, h('tr', {},
          h('th', {scope: 'col'}, 'Counter'),
          h('th', {scope: 'col', class: 'num'}, 'Value'),
          nodes.map((n) => h('th', {scope: 'col', class: 'num'}, n)))),
        h('tbody', {}, rows)));
    }

    poll();
    return {
      destroy() {
        alive = false;
        clearTimeout(timer);
      },
    };
  },
};
