// A node's page: its figures, polled every two seconds as the one record
// GET /api/v1/nodes?prefix=NODE&limit=1 answers, its events per minute and the
// average of a numeric field per minute over the last hour (the hub's
// GET /api/v1/aggregate of single(node), see perMinute), its most recent
// events (single(node) over the last 15 minutes, newest first) and its gaps.
// The events and gaps refresh every five seconds while the newest page is
// shown.
import * as api from '../api.js';
import * as format from '../format.js';
import {h, replace} from '../dom.js';
import {statusBadge, stat} from './common.js';
import {eventsTable} from './events.js';
import {perMinute} from './nodeagg.js';

const REFRESH_MS = 5000;
const FIGURES_MS = 2000;
const PAGE = 25;
const KEEP = 500; // newest events fetched
const HORIZON_MS = 15 * 60e3;
// Windows tried in turn until one holds KEEP events: a busy node needs only the
// last seconds, a quiet one the whole quarter hour.
const WINDOWS_MS = [30e3, 3 * 60e3, HORIZON_MS];
const MAX_PAGES = 10;

// recent returns up to KEEP of the node's newest events of the last 15 minutes,
// newest first, and how many events the 15 minutes hold.
async function recent(node, now) {
  const pattern = `single(${node})`;
  const countP = api.query({pattern, from: new Date(now - HORIZON_MS).toISOString(), limit: 1, count: true});
  let events = [];
  let truncated = false;
  for (const w of WINDOWS_MS) {
    const from = new Date(now - w).toISOString();
    events = [];
    let after = '';
    let pages = 0;
    do {
      const r = await api.query({pattern, from, limit: 1000, after});
      events = events.concat(r.matches || []);
      if (events.length > KEEP) events = events.slice(-KEEP);
      after = r.next || '';
      pages++;
    } while (after && pages < MAX_PAGES);
    // Still more after MAX_PAGES: the newest ones were not reached.
    truncated = Boolean(after);
    if (events.length >= KEEP || truncated) break;
  }
  const c = await countP;
  return {events: events.reverse(), count: c.count, truncated};
}

// uplinkPerEvent formats a node's uplink_bytes_per_event (null until the edge
// has reported sending an event) with one decimal, or "–".
const uplinkFmt = new Intl.NumberFormat('en-US', {maximumFractionDigits: 1, minimumFractionDigits: 1});
function uplinkPerEvent(v) {
  return Number.isFinite(v) ? `${uplinkFmt.format(v)} B` : '–';
}

export default {
  title: (node) => `Node ${node}`,
  mount(main, {arg: node}) {
    const badge = h('span');
    const stats = h('dl', {class: 'stats', id: 'node-stats'});
    const minutes = perMinute(node);
    const eventsBox = h('div', {id: 'node-events'}, h('p', {class: 'muted'}, 'Loading…'));
    const eventsNote = h('p', {class: 'muted', id: 'node-events-note'});
    const gapsBox = h('div', {id: 'node-gaps'}, h('p', {class: 'muted'}, 'Loading…'));
    const err = h('p', {class: 'error', role: 'alert', hidden: true});
    main.append(
      h('p', {class: 'crumbs'}, h('a', {href: '#/'}, '← Overview')),
      h('h1', {tabindex: '-1'}, 'Node ', h('span', {class: 'code'}, node), ' ', badge),
      err,
      h('section', {'aria-label': 'Figures'}, stats),
      h('section', {'aria-labelledby': 'node-rate-h'}, h('h2', {id: 'node-rate-h'}, 'Per minute, last hour'), minutes.el),
      h('section', {'aria-labelledby': 'node-gaps-h'}, h('h2', {id: 'node-gaps-h'}, 'Gaps'),
        h('p', {class: 'muted'}, 'Sequence numbers the hub does not hold: dropped by the edge (buffer-full, max-age, corrupt-buffer) or missing.'),
        gapsBox),
      h('section', {'aria-labelledby': 'node-events-h'}, h('h2', {id: 'node-events-h'}, 'Recent events'), eventsNote, eventsBox));

    let figuresTimer = 0;

    // The node is the first name of the list that starts with its own name,
    // when the hub knows it: one record, whatever the size of the fleet.
    async function figures() {
      let n = null;
      let failed = false;
      try {
        const body = await api.nodes({prefix: node, limit: 1});
        const first = body && body.nodes && body.nodes[0];
        n = first && first.node === node ? first : null;
      } catch {
        failed = true;
      }
      if (!alive) return;
      showFigures(n, failed);
      figuresTimer = setTimeout(figures, FIGURES_MS);
    }

    function showFigures(n, failed) {
      if (!n) {
        replace(badge);
        replace(stats, stat('Status', failed ? 'hub unreachable' : 'not known to the hub', 'status'));
        return;
      }
      replace(badge, statusBadge(n.online));
      replace(stats,
        stat('Last seen', format.ago(n.last_seen), 'last-seen'),
        stat('Events', format.int(n.events), 'events'),
        stat('Events/s', format.rate(n.events_per_s), 'rate'),
        stat('Backlog', format.int(n.buffered), 'backlog'),
        stat('Dropped', format.int(n.dropped), 'dropped'),
        stat('Missing', format.int(n.missing), 'missing'),
        stat('Epochs', format.int(Array.isArray(n.epochs) ? n.epochs.length : n.epochs), 'epochs'),
        stat('Highest seq', format.int(n.high_seq), 'high-seq'),
        // Uplink: bytes on the wire per event sent, from the edge's heartbeat.
        stat('Uplink bytes/event', uplinkPerEvent(n.uplink_bytes_per_event), 'uplink-bytes-per-event'));
    }

    let events = [];
    let pageNo = 0; // 0 is the newest page
    let timer = 0;
    let alive = true;

    function renderEvents() {
      const pages = Math.max(1, Math.ceil(events.length / PAGE));
      pageNo = Math.min(pageNo, pages - 1);
      const slice = events.slice(pageNo * PAGE, (pageNo + 1) * PAGE);
      const newer = h('button', {type: 'button', disabled: pageNo === 0, onclick: () => {
        pageNo--;
        renderEvents();
        if (pageNo === 0) refresh();
      }}, '← Newer');
      const older = h('button', {type: 'button', disabled: pageNo >= pages - 1, onclick: () => {
        pageNo++;
        renderEvents();
      }}, 'Older →');
      replace(eventsBox,
        eventsTable(slice, {id: 'node-events-table', caption: `Events of ${node}, newest first, page ${pageNo + 1} of ${pages}`,
          empty: 'No events in the last 15 minutes.'}),
        h('nav', {class: 'pager', 'aria-label': 'Event pages'}, newer, h('span', {}, `Page ${pageNo + 1} of ${pages}`), older));
    }

    function renderGaps(g) {
      const list = (g && g.gaps) || [];
      if (!list.length) {
        replace(gapsBox, h('p', {id: 'node-no-gaps'}, 'No gaps: the hub holds or knows the fate of every sequence number up to the last.'));
        return;
      }
      replace(gapsBox, h('div', {class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': 'Gaps'},
        h('table', {id: 'node-gaps-table'},
          h('caption', {}, `Gaps of ${node}`),
          h('thead', {}, h('tr', {}, ['Epoch', 'First seq', 'Last seq', 'Count', 'Reason'].map((c, i) =>
            h('th', {scope: 'col', class: i >= 1 && i <= 3 ? 'num' : null}, c)))),
          h('tbody', {}, list.map((x) => h('tr', {},
            h('td', {class: 'code small'}, x.epoch),
            h('td', {class: 'num'}, format.int(x.first_seq)),
            h('td', {class: 'num'}, format.int(x.last_seq)),
            h('td', {class: 'num'}, format.int(x.count)),
            h('td', {}, h('span', {class: `reason ${x.reason === 'missing' ? 'bad' : ''}`}, x.reason))))))));
    }

    async function refresh() {
      clearTimeout(timer);
      const now = Date.now();
      try {
        const [r, g] = await Promise.all([recent(node, now), api.gaps(node)]);
        if (!alive) return;
        err.hidden = true;
        if (pageNo === 0) {
          events = r.events;
          renderEvents();
        }
        minutes.seen(r.events);
        eventsNote.textContent = `${format.int(r.count)} events in the last 15 minutes (event time); ` +
          `the newest ${format.int(r.events.length)} are listed${r.truncated ? ` (busy node: listing stopped after ${format.int(MAX_PAGES * 1000)} events of the last 30 s, so the very newest are missing)` : ''}. ` +
          `Updated ${format.time(new Date(now).toISOString())}.`;
        renderGaps(g);
      } catch (e) {
        if (!alive) return;
        err.hidden = false;
        err.textContent = e.status === 404 ? `The hub does not know a node named "${node}".` : `Could not load: ${e.message}`;
      }
      if (alive) schedule();
    }

    // Older pages stay put while being read; refreshing waits for the newest page.
    function schedule() {
      timer = setTimeout(() => (pageNo === 0 ? refresh() : schedule()), REFRESH_MS);
    }

    figures();
    refresh();
    return {
      destroy() {
        alive = false;
        clearTimeout(timer);
        clearTimeout(figuresTimer);
        minutes.destroy();
      },
    };
  },
};
