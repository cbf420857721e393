// A node search box: a text input that asks the hub for the nodes whose name
// starts with what is typed (GET /api/v1/nodes?prefix=…&limit=20, as the user
// types, debounced) and offers them in a listbox to pick from. It follows the
// ARIA combobox pattern: arrows move through the matches, Enter picks, Escape
// closes, and the mouse works too. It never lists more than MATCHES nodes,
// however large the fleet.
import * as api from '../api.js';
import * as format from '../format.js';
import {h, replace} from '../dom.js';

const MATCHES = 20;
const DELAY_MS = 200;

// nodeSearch returns {el, input, setHint(text), reset(), destroy()}: reset closes the
// matches and drops a search still to come. onPick(name) is called
// when a match is picked; onInput(text), when set, after every edit. label is the
// input's visible label; hint the text under it until a search says more; extra
// an element to show beside the input (a button). onEnter(text), when set, is
// called for Enter with no match chosen, and returns true when it took the key
// (which then does not submit the form).
export function nodeSearch({id, label, hint, onPick, onInput, onEnter, extra}) {
  const listId = `${id}-list`;
  const hintId = `${id}-hint`;
  const input = h('input', {type: 'text', id, class: 'node-search', role: 'combobox', autocomplete: 'off', spellcheck: 'false',
    'aria-autocomplete': 'list', 'aria-expanded': 'false', 'aria-controls': listId, 'aria-describedby': hintId,
    placeholder: 'start of a node name', maxlength: '64'});
  const list = h('ul', {id: listId, class: 'node-options', role: 'listbox', 'aria-label': 'Matching nodes', hidden: true});
  const hintEl = h('small', {id: hintId, class: 'hint', 'aria-live': 'polite'}, hint);
  const el = h('div', {class: 'field node-search-field'},
    h('label', {for: id}, label),
    h('div', {class: 'combo'}, h('div', {class: 'combo-input'}, input, list), extra),
    hintEl);

  let matches = []; // the nodes offered, as the API answered them
  let active = -1;
  let timer = 0;
  let seq = 0;
  let alive = true;
  let swallow = false; // an Enter taken here, whose keypress must not submit the form

  function setHint(text) {
    if (hintEl.textContent !== text) hintEl.textContent = text;
  }

  function close() {
    list.hidden = true;
    input.setAttribute('aria-expanded', 'false');
    input.removeAttribute('aria-activedescendant');
    active = -1;
  }

  function setActive(i) {
    const opts = list.children;
    if (active >= 0 && opts[active]) opts[active].setAttribute('aria-selected', 'false');
    active = i;
    if (i < 0 || !opts[i]) {
      input.removeAttribute('aria-activedescendant');
      return;
    }
    opts[i].setAttribute('aria-selected', 'true');
    input.setAttribute('aria-activedescendant', opts[i].id);
    opts[i].scrollIntoView({block: 'nearest'});
  }

  function pick(name) {
    close();
    onPick(name);
  }

  function show(nodes) {
    matches = nodes;
    replace(list, matches.map((n, i) => h('li', {id: `${id}-opt-${i}`, role: 'option', 'aria-selected': 'false', dataset: {node: n.node},
      onmousedown: (e) => e.preventDefault(), // keep focus in the input
      onclick: () => pick(n.node)},
    h('span', {class: 'code'}, n.node), ' ', h('small', {class: n.online ? 'opt-online' : 'opt-offline'}, n.online ? 'online' : 'offline'))));
    active = -1;
    input.removeAttribute('aria-activedescendant');
    list.hidden = matches.length === 0;
    input.setAttribute('aria-expanded', String(matches.length > 0));
  }

  async function search() {
    clearTimeout(timer);
    const prefix = input.value.trim();
    const my = ++seq;
    let body;
    try {
      body = await api.nodes({prefix, limit: MATCHES});
    } catch (err) {
      if (my !== seq || !alive) return;
      close();
      setHint(`Could not search the nodes: ${err.message}`);
      return;
    }
    // Only the newest answer counts, and only while the input has focus.
    if (my !== seq || !alive || document.activeElement !== input) return;
    show((body && body.nodes) || []);
    if (!matches.length) setHint(prefix ? `No node's name starts with "${prefix}".` : 'The hub knows no node yet.');
    else if (body.next) setHint(`The first ${format.int(matches.length)} matches; type more of the name to narrow them.`);
    else setHint(matches.length === 1 ? '1 node matches.' : `${format.int(matches.length)} nodes match.`);
  }

  input.addEventListener('input', () => {
    if (onInput) onInput(input.value);
    // Until the hub answers, the matches shown narrow to what is typed, so
    // that no stale name is there to be picked.
    const prefix = input.value.trim();
    if (!list.hidden && matches.some((n) => !n.node.startsWith(prefix))) show(matches.filter((n) => n.node.startsWith(prefix)));
    clearTimeout(timer);
    timer = setTimeout(search, DELAY_MS);
  });
  input.addEventListener('focus', () => search());
  input.addEventListener('blur', () => {
    clearTimeout(timer);
    seq++;
    close();
  });
  input.addEventListener('keydown', (e) => {
    const open = !list.hidden && matches.length > 0;
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      if (!open) {
        search();
        return;
      }
      const n = matches.length;
      setActive(e.key === 'ArrowDown' ? (active + 1) % n : (active <= 0 ? n - 1 : active - 1));
    } else if (e.key === 'Enter' && open && active >= 0) {
      e.preventDefault();
      swallow = true;
      pick(matches[active].node);
    } else if (e.key === 'Enter' && onEnter && onEnter(input.value)) {
      e.preventDefault();
      swallow = true;
    } else if (e.key === 'Escape' && open) {
      e.preventDefault();
      close();
    }
  });

  // A form submits on Enter's keypress. A browser sends none after a keydown
  // whose default was prevented, but a driver that sends the keypress (the
  // character) as its own event would still submit.
  input.addEventListener('keypress', (e) => {
    if (e.key === 'Enter' && swallow) e.preventDefault();
  });
  input.addEventListener('keyup', () => {
    swallow = false;
  });

  return {
    el,
    input,
    setHint,
    reset() {
      clearTimeout(timer);
      seq++;
      close();
    },
    destroy() {
      alive = false;
      clearTimeout(timer);
    },
  };
}
