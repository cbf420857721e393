// Counters: every counter's kind, its fleet value and each node's own value,
// refreshed every two seconds. With a few nodes it is a matrix of one row per
// counter and one column per node (a last counter also shows when its value
// was written, and by which node); past MAX_COLUMNS nodes, each row names its
// number of nodes and its largest shares instead, so that the table does not
// grow with the fleet.
import * as api from '../api.js';
import * as format from '../format.js';
import {h, replace} from '../dom.js';

const INTERVAL_MS = 2000;
const MAX_COLUMNS = 12;
const TOP_SHARES = 5;

// KINDS says in a few words what each kind's value is, for the badge's title.
const KINDS = {
  sum: 'sum: every node adds to its own share; the value is their total',
  max: 'max: the largest value any node ever set',
  min: 'min: the smallest value any node ever set',
  last: 'last: the newest value any node wrote',
};

// show formats a counter's value: an exact integer for a sum, a number for the
// other kinds, "–" for none.
function show(kind, v) {
  return kind === 'sum' ? format.int(v) : format.number(v);
}

export default {
  title: () => 'Counters',
  mount(main) {
    const wrap = h('div', {class: 'table-wrap', tabindex: '0', role: 'region', 'aria-labelledby': 'counters-h'});
    const note = h('p', {class: 'muted', id: 'counters-note'}, 'Loading…');
    const err = h('p', {class: 'error', role: 'alert', hidden: true});
    main.append(
      h('h1', {id: 'counters-h', tabindex: '-1'}, 'Counters'),
      h('p', {}, 'Distributed counters: every edge writes its own state, even while offline, and the hub merges the states. ',
        'A sum adds up every node\'s share; max and min keep the largest and smallest value ever set; last keeps the newest write. ',
        'An edge writes with ', h('code', {}, 'POST /api/v1/counters/NAME {"delta": N}'), ' or ',
        h('code', {}, '{"kind": "max", "value": X}'), ' on its local API.'),
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

    function written(c) {
      if (c.kind !== 'last') return h('td', {class: 'updated muted'}, '–');
      if (!c.updated) return h('td', {class: 'updated muted'}, 'never');
      return h('td', {class: 'updated', dataset: {writer: c.writer || ''}},
        h('time', {datetime: c.updated, title: format.ago(c.updated)}, format.time(c.updated)), ' by ', h('strong', {}, c.writer || '?'));
    }

    function render(list) {
      list.sort((a, b) => (a.name < b.name ? -1 : 1));
      const nodes = [...new Set(list.flatMap((c) => Object.keys(c.nodes || {})))].sort();
      if (nodes.length > MAX_COLUMNS) {
        renderSummary(list);
        return;
      }
      const rows = list.map((c) => {
        const kind = c.kind || 'sum';
        return h('tr', {dataset: {counter: c.name, kind}},
          h('th', {scope: 'row'}, c.name),
          h('td', {}, h('span', {class: 'badge kind', title: KINDS[kind] || kind}, kind)),
          h('td', {class: 'num total', dataset: {value: String(c.value)}}, show(kind, c.value)),
          written(c),
          nodes.map((n) => {
            const v = c.nodes ? c.nodes[n] : undefined;
            const writer = kind === 'last' && c.updated && c.writer === n;
            return h('td', {class: writer ? 'num writer' : 'num', dataset: {node: n}, title: writer ? 'wrote the newest value' : null},
              v === undefined ? '–' : show(kind, v));
          }));
      });
      if (!rows.length) rows.push(h('tr', {}, h('td', {colspan: 4 + nodes.length, class: 'empty'}, 'No counters yet.')));
      replace(wrap, h('table', {id: 'counters-table'},
        h('caption', {}, 'Counter kinds and values, fleet-wide and per node'),
        h('thead', {}, h('tr', {},
          h('th', {scope: 'col'}, 'Counter'),
          h('th', {scope: 'col'}, 'Kind'),
          h('th', {scope: 'col', class: 'num'}, 'Value'),
          h('th', {scope: 'col'}, 'Written'),
          nodes.map((n) => h('th', {scope: 'col', class: 'num'}, n)))),
        h('tbody', {}, rows)));
    }

    // renderSummary is the table for a fleet: per counter, how many nodes hold a
    // share and the largest shares by size.
    function renderSummary(list) {
      const rows = list.map((c) => {
        const kind = c.kind || 'sum';
        const shares = Object.entries(c.nodes || {});
        const top = shares.map(([n, v]) => [n, Number(v)])
          .sort(([an, a], [bn, b]) => Math.abs(b) - Math.abs(a) || (an < bn ? -1 : 1)).slice(0, TOP_SHARES);
        return h('tr', {dataset: {counter: c.name, kind}},
          h('th', {scope: 'row'}, c.name),
          h('td', {}, h('span', {class: 'badge kind', title: KINDS[kind] || kind}, kind)),
          h('td', {class: 'num total', dataset: {value: String(c.value)}}, show(kind, c.value)),
          h('td', {class: 'num'}, format.int(shares.length)),
          h('td', {}, top.map(([n, v], i) => [i ? ', ' : '', h('a', {href: `#/node/${encodeURIComponent(n)}`}, n), ` ${show(kind, v)}`])));
      });
      replace(wrap, h('table', {id: 'counters-table'},
        h('caption', {}, `Counter kinds and values, with the ${TOP_SHARES} largest shares of each`),
        h('thead', {}, h('tr', {},
          h('th', {scope: 'col'}, 'Counter'),
          h('th', {scope: 'col'}, 'Kind'),
          h('th', {scope: 'col', class: 'num'}, 'Value'),
          h('th', {scope: 'col', class: 'num'}, 'Nodes'),
          h('th', {scope: 'col'}, 'Largest shares'))),
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
