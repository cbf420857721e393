// The overview: fleet totals, an events-per-second chart of every node, and one
// table row per node. It follows the fleet poller and never reloads.
import * as fleet from '../fleet.js';
import * as format from '../format.js';
import {rateChart} from '../chart.js';
import {h, replace} from '../dom.js';
import {statusBadge, stat} from './common.js';

const COLUMNS = [
  {label: 'Node'},
  {label: 'Status'},
  {label: 'Last seen'},
  {label: 'Events', num: true},
  {label: 'Events/s', num: true},
  {label: 'Backlog', num: true},
  {label: 'Dropped', num: true},
  {label: 'Missing', num: true},
];

export default {
  title: () => 'Overview',
  mount(main) {
    const stats = h('dl', {class: 'stats', id: 'fleet-totals'});
    const chart = rateChart('Events per second received by the hub, per node, over the last 10 minutes',
      'Line chart of events per second per node; the same figures are in the Events/s column of the nodes table.');
    const tbody = h('tbody');
    const tableEl = h('table', {id: 'nodes-table'},
      h('caption', {}, 'Nodes known to the hub'),
      h('thead', {}, h('tr', {}, COLUMNS.map((c) => h('th', {scope: 'col', class: c.num ? 'num' : null}, c.label)))),
      tbody);
    const note = h('p', {class: 'muted', id: 'overview-note'}, 'Waiting for the hub…');
    main.append(
      h('section', {'aria-labelledby': 'fleet-h'},
        h('h1', {id: 'fleet-h', tabindex: '-1'}, 'Fleet overview'), stats, note),
      h('section', {'aria-labelledby': 'rate-h'}, h('h2', {id: 'rate-h'}, 'Throughput'), chart.el),
      h('section', {'aria-labelledby': 'nodes-h'}, h('h2', {id: 'nodes-h'}, 'Nodes'),
        h('div', {class: 'table-wrap', tabindex: '0', role: 'region', 'aria-labelledby': 'nodes-h'}, tableEl)),
    );

    const rows = new Map(); // node → {tr, cells: [td…]}
    let order = null; // the node names of the rows shown

    function render(s) {
      const nodes = s.nodes;
      const names = nodes.map((n) => n.node);
      const sum = (k) => nodes.reduce((a, n) => a + (Number(n[k]) || 0), 0);
      const online = nodes.filter((n) => n.online).length;
      replace(stats,
        stat('Nodes online', `${online} / ${nodes.length}`, 'nodes-online'),
        stat('Events', format.int(sum('events')), 'events'),
        stat('Events/s', format.rate(fleet.totalRate(names)), 'rate'),
        stat('Backlog', format.int(sum('buffered')), 'backlog'),
        stat('Dropped', format.int(sum('dropped')), 'dropped'),
        stat('Missing', format.int(sum('missing')), 'missing'));
      if (s.error) note.textContent = `Could not refresh: ${s.error.message}. Showing the last answer.`;
      else if (nodes.length === 0) note.textContent = 'No node has reached the hub yet. Start an edge agent with --hub pointing at this hub.';
      else note.textContent = `Updated ${format.time(new Date(s.t * 1000).toISOString())}; refreshes every 2 s.`;

      // Rows are kept and their cells updated in place, so that a focused link
      // keeps its focus across refreshes.
      const key = names.join('\u0000');
      if (key !== order) {
        order = key;
        rows.clear();
        tbody.replaceChildren();
        for (const n of nodes) {
          const cells = COLUMNS.map((c) => h('td', {class: c.num ? 'num' : null}));
          const th = h('th', {scope: 'row'}, h('a', {href: `#/node/${encodeURIComponent(n.node)}`}, n.node));
          const tr = h('tr', {dataset: {node: n.node}}, th, cells.slice(1));
          rows.set(n.node, {tr, cells});
          tbody.append(tr);
        }
        if (nodes.length === 0) tbody.append(h('tr', {}, h('td', {colspan: COLUMNS.length, class: 'empty'}, 'No nodes yet.')));
      }
      for (const n of nodes) {
        const {cells} = rows.get(n.node);
        replace(cells[1], statusBadge(n.online));
        cells[2].textContent = format.ago(n.last_seen);
        cells[2].title = n.last_seen ? format.time(n.last_seen) : '';
        cells[3].textContent = format.int(n.events);
        cells[4].textContent = format.rate(fleet.rate(n.node));
        cells[5].textContent = format.int(n.buffered);
        cells[6].textContent = format.int(n.dropped);
        cells[7].textContent = format.int(n.missing);
      }
      chart.update(fleet.series(names), names);
    }

    const unsubscribe = fleet.subscribe(render);
    return {
      destroy() {
        unsubscribe();
        chart.destroy();
      },
    };
  },
};
