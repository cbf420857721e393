// The overview: fleet totals, a chart of the fleet's events per second with its
// fastest nodes, and one page of the node table, fetched from the hub, with a
// search by name prefix, a sort, an online filter and Previous/Next paging.
// Nothing on the page grows with the fleet: the table holds at most PAGE rows and
// the chart at most six lines, for ten nodes or ten thousand.
//
// Sort, filter and search live in the address (#/?sort=backlog&online=false&q=sim-1),
// so a reload or a shared link keeps them; the page position does not, since a
// cursor only means something in the list it came from. The table refreshes
// with every poll of the fleet (2 s), in place: the page, the focus and the
// controls' state stay where they are.
import * as api from '../api.js';
import * as fleet from '../fleet.js';
import * as format from '../format.js';
import {rateChart} from '../chart.js';
import {h, field, replace} from '../dom.js';
import {statusBadge, stat} from './common.js';

// PAGE is the table's page size.
const PAGE = 50;
const SEARCH_DELAY_MS = 250;

const COLUMNS = [
  {label: 'Node'},
  {label: 'Status'},
  {label: 'Last seen'},
  {label: 'Events', num: true},
  {label: 'Events/s', num: true},
  {label: 'Backlog', num: true},
  {label: 'Dropped', num: true},
  {label: 'Missing', num: true},
  {label: 'Clock'},
];

// CLOCK_WARN_MS is the clock offset past which a node's row flags it: events
// it stamps itself are corrected, but its own ts fields are off by that much.
const CLOCK_WARN_MS = 1000;

// clockCell shows a node's clock offset to the hub: flagged past
// CLOCK_WARN_MS, "ok" within it, "–" before the node has measured.
function clockCell(n) {
  const off = n.clock_offset_ms;
  if (off === null || off === undefined) return '–';
  const text = `${off > 0 ? '+' : ''}${(off / 1000).toFixed(Math.abs(off) < 10000 ? 3 : 1)} s`;
  if (Math.abs(off) <= CLOCK_WARN_MS) return h('span', {class: 'muted', title: `hub − node = ${text}`}, 'ok');
  return h('span', {class: 'badge warn', title: 'hub − node: the node\'s clock is off by more than 1 s', dataset: {clock: 'off'}}, `clock ${text}`);
}

const SORTS = [
  ['name', 'Name'],
  ['offline', 'Offline first'],
  ['backlog', 'Largest backlog'],
  ['missing', 'Most missing'],
  ['rate', 'Fastest'],
];

const SHOW = [
  ['', 'All nodes'],
  ['true', 'Online only'],
  ['false', 'Offline only'],
];

// readParams takes the table's view from the address, ignoring what it does not
// know.
function readParams(params) {
  const sort = params.get('sort') || 'name';
  const online = params.get('online') || '';
  return {
    sort: SORTS.some(([v]) => v === sort) ? sort : 'name',
    online: online === 'true' || online === 'false' ? online : '',
    q: (params.get('q') || '').trim().slice(0, 64),
  };
}

export default {
  title: () => 'Overview',
  mount(main, {params}) {
    let view = readParams(params);

    const stats = h('dl', {class: 'stats', id: 'fleet-totals'});
    const chart = rateChart('Events per second received by the hub over the last 10 minutes: all nodes (the thick line) and the five fastest nodes',
      'Line chart of events per second: one line for all nodes together (on a scale of its own once the fleet has more nodes than the chart has lines) ' +
      'and one for each of the five fastest nodes. ' +
      'The fleet figure is Events/s above; every node\'s is in the Events/s column of the nodes table (sort by Fastest).',
      {total: true});
    const note = h('p', {class: 'muted', id: 'overview-note'}, 'Waiting for the hub…');

    const search = h('input', {type: 'search', id: 'nodes-search', autocomplete: 'off', spellcheck: 'false',
      placeholder: 'start of a name', value: view.q, maxlength: '64'});
    const sortSel = h('select', {id: 'nodes-sort', value: view.sort}, SORTS.map(([v, l]) => h('option', {value: v}, l)));
    const showSel = h('select', {id: 'nodes-online', value: view.online}, SHOW.map(([v, l]) => h('option', {value: v}, l)));
    const tools = h('form', {class: 'table-tools', role: 'search', 'aria-label': 'Nodes', onsubmit: (e) => {
      e.preventDefault();
      applySearch();
    }},
    field('Search by name', search, 'Nodes whose name starts with this'),
    field('Sort by', sortSel),
    field('Show', showSel));

    const tbody = h('tbody');
    const emptyCell = h('td', {colspan: COLUMNS.length, class: 'empty'}, 'Loading…');
    const emptyRow = h('tr', {}, emptyCell);
    tbody.append(emptyRow);
    const tableEl = h('table', {id: 'nodes-table'},
      h('caption', {}, 'Nodes known to the hub, one page at a time'),
      h('thead', {}, h('tr', {}, COLUMNS.map((c) => h('th', {scope: 'col', class: c.num ? 'num' : null}, c.label)))),
      tbody);
    const prev = h('button', {type: 'button', id: 'nodes-prev', disabled: true, onclick: () => {
      if (!cursors.length) return;
      after = cursors.pop();
      load();
    }}, '← Previous');
    const next = h('button', {type: 'button', id: 'nodes-next', disabled: true, onclick: () => {
      if (!answer || !answer.next) return;
      cursors.push(after);
      after = answer.next;
      load();
    }}, 'Next →');
    const count = h('p', {id: 'nodes-count', role: 'status'});
    const tableErr = h('p', {class: 'error', id: 'nodes-error', role: 'alert', hidden: true});

    main.append(
      h('section', {'aria-labelledby': 'fleet-h'},
        h('h1', {id: 'fleet-h', tabindex: '-1'}, 'Fleet overview'), stats, note),
      h('section', {'aria-labelledby': 'rate-h'}, h('h2', {id: 'rate-h'}, 'Throughput'), chart.el),
      h('section', {'aria-labelledby': 'nodes-h'}, h('h2', {id: 'nodes-h'}, 'Nodes'),
        tools,
        tableErr,
        h('div', {class: 'table-wrap', tabindex: '0', role: 'region', 'aria-labelledby': 'nodes-h'}, tableEl),
        h('nav', {class: 'pager', 'aria-label': 'Node pages'}, prev, count, next)),
    );

    let cursors = []; // the cursors of the pages before this one
    let after = ''; // this page's cursor
    let answer = null; // this page's last answer
    let seq = 0; // drops answers to superseded requests
    let loading = false;
    let loads = 0;
    let searchTimer = 0;
    const rows = new Map(); // node → {tr, cells, online}

    // apply starts again from the first page of the new view and writes it to
    // the address. replaceState fires no hashchange: the router is not involved,
    // and the history gets no entry per keystroke.
    function apply(v) {
      view = v;
      cursors = [];
      after = '';
      const p = new URLSearchParams();
      if (view.sort !== 'name') p.set('sort', view.sort);
      if (view.online) p.set('online', view.online);
      if (view.q) p.set('q', view.q);
      const hash = p.toString() ? `#/?${p}` : '#/';
      if (location.hash !== hash && !(hash === '#/' && location.hash === '')) history.replaceState(null, '', hash);
      load();
    }

    function applySearch() {
      clearTimeout(searchTimer);
      const q = search.value.trim();
      if (q !== view.q) apply({...view, q});
    }

    search.addEventListener('input', () => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(applySearch, SEARCH_DELAY_MS);
    });
    sortSel.addEventListener('change', () => apply({...view, sort: sortSel.value}));
    showSel.addEventListener('change', () => apply({...view, online: showSel.value}));

    async function load() {
      const my = ++seq;
      loading = true;
      tableEl.setAttribute('aria-busy', 'true');
      let body;
      try {
        body = await api.nodes({limit: PAGE, after, sort: view.sort, online: view.online, prefix: view.q});
      } catch (err) {
        if (my !== seq) return;
        loading = false;
        tableEl.removeAttribute('aria-busy');
        tableErr.hidden = false;
        tableErr.textContent = `Could not load the nodes: ${err.message}`;
        return;
      }
      if (my !== seq) return;
      loading = false;
      tableEl.removeAttribute('aria-busy');
      tableErr.hidden = true;
      // A later page can empty out as the fleet changes (nodes come online
      // under "offline only"): start again from the first.
      if (!(body.nodes || []).length && after) {
        cursors = [];
        after = '';
        load();
        return;
      }
      answer = body;
      renderTable();
    }

    // showRows puts the page's rows in the table, keeping the rows of nodes
    // still on it, so that a focused link in them keeps its focus.
    function showRows(list) {
      const focused = document.activeElement;
      const want = new Set(list.map((n) => n.node));
      for (const [name, r] of rows) {
        if (!want.has(name)) {
          r.tr.remove();
          rows.delete(name);
        }
      }
      emptyRow.remove();
      list.forEach((n, i) => {
        let r = rows.get(n.node);
        if (!r) {
          const cells = COLUMNS.map((c) => h('td', {class: c.num ? 'num' : null}));
          const th = h('th', {scope: 'row'}, h('a', {href: `#/node/${encodeURIComponent(n.node)}`}, n.node));
          r = {tr: h('tr', {dataset: {node: n.node}}, th, cells.slice(1)), cells, online: null};
          rows.set(n.node, r);
        }
        const at = tbody.children[i];
        if (at !== r.tr) tbody.insertBefore(r.tr, at || null);
        const {cells} = r;
        if (r.online !== n.online) {
          r.online = n.online;
          replace(cells[1], statusBadge(n.online));
        }
        setText(cells[2], format.ago(n.last_seen));
        cells[2].title = n.last_seen ? format.time(n.last_seen) : '';
        setText(cells[3], format.int(n.events));
        setText(cells[4], format.rate(n.events_per_s));
        setText(cells[5], format.int(n.buffered));
        setText(cells[6], format.int(n.dropped));
        setText(cells[7], format.int(n.missing));
        const clock = clockCell(n);
        if (cells[8].dataset.shown !== String(n.clock_offset_ms)) {
          cells[8].dataset.shown = String(n.clock_offset_ms);
          replace(cells[8], clock);
        }
      });
      if (!list.length) {
        emptyCell.textContent = view.q || view.online ? 'No node matches.' : 'No nodes yet.';
        tbody.append(emptyRow);
      }
      // A row that had to move loses focus; give it back.
      if (focused && focused !== document.activeElement && focused.isConnected) focused.focus({preventScroll: true});
    }

    function renderTable() {
      const list = answer.nodes || [];
      showRows(list);
      const t = answer.totals || {};
      const offset = cursors.length * PAGE;
      // Totals cover the whole fleet, so a row count out of them is exact for
      // the fleet and for its online or offline part, but not for a search.
      let of = null;
      if (!view.q) of = view.online === '' ? t.nodes : view.online === 'true' ? t.online : t.nodes - t.online;
      let text;
      if (!list.length) text = 'no rows';
      else text = `rows ${format.int(offset + 1)}–${format.int(offset + list.length)}` + (of === null ? '' : ` of ${format.int(of)}`);
      if (count.textContent !== text) count.textContent = text;
      // A disabled button cannot hold focus: hand it to the other one.
      const lost = document.activeElement;
      prev.disabled = cursors.length === 0;
      next.disabled = !answer.next;
      if (lost === next && next.disabled && !prev.disabled) prev.focus();
      if (lost === prev && prev.disabled && !next.disabled) next.focus();
      loads++;
      tableEl.dataset.loads = String(loads);
    }

    function renderTotals(s) {
      const t = s.totals;
      if (t) {
        replace(stats,
          stat('Nodes online', [format.int(t.online), h('span', {class: 'of'}, ` / ${format.int(t.nodes)}`)], 'nodes-online'),
          stat('Events', format.int(t.events), 'events'),
          stat('Events/s', format.rate(t.events_per_s), 'rate'),
          stat('Backlog', format.int(t.buffered), 'backlog'),
          stat('Dropped', format.int(t.dropped), 'dropped'),
          stat('Missing', format.int(t.missing), 'missing'));
      }
      if (s.error) note.textContent = `Could not refresh: ${s.error.message}. Showing the last answer.`;
      else if (t && t.nodes === 0) note.textContent = 'No node has reached the hub yet. Start an edge agent with --hub pointing at this hub.';
      else note.textContent = `Updated ${format.time(new Date(s.t * 1000).toISOString())}; refreshes every 2 s. Events/s are the hub's 30-second averages.`;
      const {labels, data} = fleet.series();
      // While the chart has a line for every node, the total is their sum and
      // shares their scale; past that it is drawn against its own.
      chart.update(data, labels, {ownScale: Boolean(t && t.nodes > labels.length - 1)});
    }

    load();
    const unsubscribe = fleet.subscribe((s) => {
      renderTotals(s);
      // The table follows the poller's beat (and retries a failed load with it);
      // a page still loading is not asked for twice.
      if (!loading) load();
    });

    return {
      // The router calls update when the address changes under the page (the
      // Overview link, a pasted address, Back).
      update(p) {
        const v = readParams(p);
        if (v.sort === view.sort && v.online === view.online && v.q === view.q) return;
        search.value = v.q;
        sortSel.value = v.sort;
        showSel.value = v.online;
        apply(v);
      },
      destroy() {
        seq++;
        clearTimeout(searchTimer);
        unsubscribe();
        chart.destroy();
      },
    };
  },
};

// setText writes text only when it changed, so that an unchanged figure is not
// announced or repainted.
function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}
