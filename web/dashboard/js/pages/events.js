// Showing events and predicate errors, for the query console, the live tail and
// the node page.
import * as api from '../api.js';
import * as format from '../format.js';
import {h} from '../dom.js';

// eventRow is one table row of an event: time, node, stream, seq, epoch, data.
export function eventRow(ev) {
  return h('tr', {dataset: {key: `${ev.node}/${ev.epoch}/${ev.seq}`}},
    h('td', {class: 'nowrap', title: `received ${format.time(ev.received)}`}, h('time', {datetime: ev.ts}, format.time(ev.ts))),
    h('td', {}, h('a', {href: `#/node/${encodeURIComponent(ev.node)}`}, ev.node)),
    h('td', {}, ev.stream),
    h('td', {class: 'num'}, String(ev.seq)),
    h('td', {class: 'code small'}, ev.epoch),
    h('td', {class: 'code data'}, format.json(ev.data)));
}

// EVENT_COLUMNS are the headers matching eventRow.
export const EVENT_COLUMNS = ['Time', 'Node', 'Stream', 'Seq', 'Epoch', 'Data'];

// eventsTable is a scrollable table of events with the given caption.
export function eventsTable(events, {id, caption, empty}) {
  const tbody = h('tbody', {}, events.map(eventRow));
  if (!events.length) tbody.append(h('tr', {}, h('td', {colspan: EVENT_COLUMNS.length, class: 'empty'}, empty)));
  return h('div', {class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': caption},
    h('table', {id, class: 'events'},
      h('caption', {}, caption),
      h('thead', {}, h('tr', {}, EVENT_COLUMNS.map((c) => h('th', {scope: 'col', class: c === 'Seq' ? 'num' : null}, c)))),
      tbody));
}

// whereError shows the API's predicate error under the where input and points at
// its column: the message, the expression with the character there marked, and a
// caret under it. The input is marked invalid and its caret moved there.
export function whereError(box, input, message) {
  const col = api.whereColumn(message);
  const text = input.value;
  const kids = [h('p', {class: 'error', role: 'alert'}, message)];
  if (col > 0) {
    const i = Math.min(col - 1, text.length);
    const at = text.slice(i, i + 1) || ' ';
    kids.push(h('pre', {class: 'where-pointer', 'aria-hidden': 'true'},
      text.slice(0, i), h('mark', {}, at), text.slice(i + 1), '\n', ' '.repeat(i), '^'));
  }
  box.replaceChildren(...kids);
  box.hidden = false;
  input.setAttribute('aria-invalid', 'true');
  input.focus();
  if (col > 0) {
    const i = Math.min(col - 1, text.length);
    input.setSelectionRange(i, Math.min(i + 1, text.length));
  }
}
