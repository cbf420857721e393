// Cluster: the hubs of the cluster as this hub sees them — which one you are
// on, which one leads the EDGE stream, whether each is active and caught up —
// refreshed every two seconds. Also the header badge that names the hub the
// dashboard is on, on every page.
import * as api from '../api.js';
import * as format from '../format.js';
import {h, replace} from '../dom.js';
import {stat} from './common.js';

const INTERVAL_MS = 2000;
const BADGE_INTERVAL_MS = 5000;

// summary says in a few words what the cluster is: "hub-2 · 3/3 hubs".
function summary(c) {
  if (!c.clustered) return `${c.name} · single hub`;
  const active = c.peers.filter((p) => p.active).length;
  return `${c.name} · ${active}/${c.peers.length} hubs`;
}

// badge keeps el (the header badge) naming the hub the dashboard is on and
// how many hubs of its cluster are active. A failed poll leaves the last
// answer and marks it stale.
export function badge(el) {
  async function poll() {
    try {
      const c = await api.cluster();
      const text = summary(c);
      if (el.textContent !== text) el.textContent = text;
      const down = c.clustered && c.peers.some((p) => !p.active);
      el.className = `hub-badge${down || (c.clustered && !c.stream_leader) ? ' degraded' : ''}`;
      el.title = c.clustered
        ? `You are on hub ${c.name} of cluster ${c.cluster}; ${c.stream_leader || 'no hub'} leads the EDGE stream (R${c.replicas}).`
        : `You are on hub ${c.name}, a single hub.`;
      el.hidden = false;
    } catch {
      el.classList.add('stale');
    }
    setTimeout(poll, BADGE_INTERVAL_MS);
  }
  poll();
}

function yesNo(ok, yes, no) {
  return h('span', {class: `badge ${ok ? 'online' : 'offline'}`}, ok ? yes : no);
}

export default {
  title: () => 'Cluster',
  mount(main) {
    const stats = h('dl', {class: 'stats', id: 'cluster-stats'});
    const note = h('p', {class: 'muted', id: 'cluster-note'}, 'Loading…');
    const err = h('p', {class: 'error', role: 'alert', hidden: true});
    const wrap = h('div', {class: 'table-wrap', tabindex: '0', role: 'region', 'aria-labelledby': 'cluster-peers-h'});
    const about = h('p', {id: 'cluster-about'});
    main.append(
      h('h1', {id: 'cluster-h', tabindex: '-1'}, 'Cluster'),
      about, stats, err, note,
      h('h2', {id: 'cluster-peers-h'}, 'Hubs'), wrap);

    let timer = 0;
    let alive = true;

    function render(c) {
      const active = c.peers.filter((p) => p.active).length;
      replace(about, c.clustered
        ? ['Every hub holds the whole EDGE stream (replicated by JetStream with Raft), materializes it into its own index ',
          'and answers the whole API. Edges list every hub and fail over by themselves. ',
          `With ${c.replicas} replicas the cluster keeps taking batches while a majority (${Math.floor(c.replicas / 2) + 1}) of them is up.`]
        : ['This hub runs alone: one embedded server holds the EDGE stream. Start hubs with ',
          h('code', {}, '--cluster'), ' and ', h('code', {}, '--peers'), ' to make a cluster.']);
      replace(stats,
        stat('You are on', c.name, 'name'),
        stat('Cluster', c.clustered ? c.cluster : 'single hub', 'cluster'),
        stat('Hubs active', `${active} / ${c.peers.length}`, 'active'),
        stat('Stream leader', c.stream_leader || 'none', 'leader'),
        stat('Replicas', String(c.replicas), 'replicas'),
        stat('To materialize', c.pending === null || c.pending === undefined ? '–' : format.int(c.pending), 'pending'));
      const rows = c.peers.map((p) => h('tr', {dataset: {peer: p.name}},
        h('th', {scope: 'row'}, p.name,
          p.name === c.name ? h('span', {class: 'badge kind here'}, 'this hub') : null),
        h('td', {}, p.name === c.stream_leader ? h('span', {class: 'badge kind leader'}, 'stream leader') : null,
          p.name === c.meta_leader ? h('span', {class: 'badge kind meta'}, 'meta leader') : null,
          p.name !== c.stream_leader && p.name !== c.meta_leader ? '–' : null),
        h('td', {class: 'active'}, yesNo(p.active, 'active', 'unreachable')),
        h('td', {class: 'current'}, yesNo(p.current, 'caught up', 'behind')),
        h('td', {class: 'num'}, p.name === c.name ? '–' : `${format.int(p.last_seen_ms)} ms ago`)));
      replace(wrap, h('table', {id: 'cluster-table'},
        h('caption', {}, 'The hubs of the cluster, as this hub sees them'),
        h('thead', {}, h('tr', {},
          h('th', {scope: 'col'}, 'Hub'),
          h('th', {scope: 'col'}, 'Role'),
          h('th', {scope: 'col'}, 'Reachable'),
          h('th', {scope: 'col'}, 'Replica'),
          h('th', {scope: 'col', class: 'num'}, 'Last heard'))),
        h('tbody', {}, rows)));
      if (c.clustered && !c.stream_leader) {
        err.hidden = false;
        err.textContent = 'The EDGE stream has no leader: fewer than a majority of its replicas are up. Edges keep their events until it has one again.';
      } else {
        err.hidden = true;
      }
    }

    async function poll() {
      try {
        const c = await api.cluster();
        if (!alive) return;
        render(c);
        note.textContent = `Updated ${format.time(new Date().toISOString())}; refreshes every 2 s.`;
      } catch (e) {
        if (!alive) return;
        err.hidden = false;
        err.textContent = `Could not load the cluster: ${e.message}`;
      }
      if (alive) timer = setTimeout(poll, INTERVAL_MS);
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
