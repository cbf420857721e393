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
