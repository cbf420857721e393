// The dashboard's entry point: hash routing between the pages and the hub status
// line in the header. Routes: #/ (overview), #/node/NAME, #/query?…, #/live?…,
// #/counters, #/cluster.
import * as fleet from './fleet.js';
import * as format from './format.js';
import {h, replace} from './dom.js';
import overview from './pages/overview.js';
import nodePage from './pages/node.js';
import queryPage from './pages/query.js';
import livePage from './pages/live.js';
import countersPage from './pages/counters.js';
import clusterPage, {badge as clusterBadge} from './pages/cluster.js';

const main = document.getElementById('main');
let current = null; // {name, arg, instance}
let routed = false; // set after the first page is shown

// parseHash splits location.hash into a path and its query parameters.
function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const q = raw.indexOf('?');
  const path = q < 0 ? raw : raw.slice(0, q);
  const params = new URLSearchParams(q < 0 ? '' : raw.slice(q + 1));
  return {path: path || '/', params};
}

function resolve(path) {
  if (path === '/' || path === '') return {name: 'overview', page: overview, arg: null};
  const node = /^\/node\/([^/]+)$/.exec(path);
  if (node) {
    let name;
    try {
      name = decodeURIComponent(node[1]);
    } catch {
      name = node[1];
    }
    return {name: 'node', page: nodePage, arg: name};
  }
  if (path === '/query') return {name: 'query', page: queryPage, arg: null};
  if (path === '/live') return {name: 'live', page: livePage, arg: null};
  if (path === '/counters') return {name: 'counters', page: countersPage, arg: null};
  if (path === '/cluster') return {name: 'cluster', page: clusterPage, arg: null};
  return {name: 'missing', page: notFound, arg: path};
}

const notFound = {
  title: () => 'Not found',
  mount(el, {arg}) {
    replace(el, h('h1', {tabindex: '-1'}, 'Page not found'),
      h('p', {}, `There is no page at "${arg}". `, h('a', {href: '#/'}, 'Go to the overview.')));
    return {};
  },
};

function route() {
  const {path, params} = parseHash();
  const r = resolve(path);
  // The same page with new parameters (a query that was run, a live tail that was
  // restarted) updates in place, so focus and form state stay where they are.
  if (current && current.name === r.name && current.arg === r.arg && current.instance.update) {
    current.instance.update(params);
    return;
  }
  if (current && current.instance.destroy) current.instance.destroy();
  main.replaceChildren();
  const instance = r.page.mount(main, {arg: r.arg, params}) || {};
  current = {name: r.name, arg: r.arg, instance};
  document.title = `${r.page.title(r.arg)} · Tributary`;
  for (const a of document.querySelectorAll('nav a[data-nav]')) {
    const active = a.dataset.nav === r.name || (r.name === 'node' && a.dataset.nav === 'overview');
    if (active) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  // Move focus to the new page's heading, as a page load would, for keyboard and
  // screen-reader users; but not on the first load.
  if (routed) {
    const h1 = main.querySelector('h1');
    if (h1) h1.focus({preventScroll: false});
  }
  routed = true;
}

const status = document.getElementById('hub-status');
fleet.subscribe((s) => {
  // Only real changes are written: the line is a live region.
  const set = (cls, text) => {
    if (status.textContent !== text) status.textContent = text;
    status.className = `hub-status ${cls}`;
  };
  if (s.error) {
    set('bad', `Hub unreachable: ${s.error.message}`);
    return;
  }
  const t = s.totals || {nodes: 0, online: 0};
  set('ok', `Hub up · ${format.int(t.online)}/${format.int(t.nodes)} nodes online`);
  status.title = `Last poll ${format.time(new Date(s.t * 1000).toISOString())}`;
});

clusterBadge(document.getElementById('hub-badge'));
window.addEventListener('hashchange', route);
fleet.start();
route();
