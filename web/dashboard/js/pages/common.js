// Pieces shared by several pages.
import {h} from '../dom.js';

// statusBadge shows online/offline as a word, not by colour alone.
export function statusBadge(online) {
  return h('span', {class: `badge ${online ? 'online' : 'offline'}`}, online ? 'online' : 'offline');
}

// stat is one figure of a <dl class="stats">.
export function stat(label, value, key) {
  return h('div', {class: 'stat', dataset: {stat: key}}, h('dt', {}, label), h('dd', {}, value));
}

// submitToAddress makes a form's submit put its query in the address
// (#/query?…), where the router runs it through the page's update; the same
// query again, which changes no address, runs at once. read returns {params}
// or {error}.
export function submitToAddress(form, read, showError, run) {
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const r = read();
    if (r.error) {
      showError(r.error);
      return;
    }
    showError('');
    const hash = `#/query?${r.params}`;
    if (location.hash === hash) run(r.params);
    else location.hash = hash;
  });
}
