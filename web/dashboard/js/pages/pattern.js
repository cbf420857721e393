// The pattern builder of the query console and the live tail: a choice of
// single / multiple / all / any and, for the first two, a search of the hub's
// nodes to pick from. The picker never lists the fleet: it asks the hub for the
// names that start with what is typed, twenty at a time. Nodes chosen for
// multiple(…) are shown as chips that can be removed.
import * as api from '../api.js';
import {h, uid, replace} from '../dom.js';
import {nodeSearch} from './nodesearch.js';

// NAME is a node ID as DESIGN.md defines it.
const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

const KINDS = [
  ['all', 'all', 'every known node'],
  ['any', 'any', 'at least one node'],
  ['single', 'single', 'one node'],
  ['multiple', 'multiple', 'chosen nodes'],
];

// parsePattern splits a pattern string into {kind, nodes}.
export function parsePattern(p) {
  const s = (p || '').trim();
  const m = /^(single|multiple)\s*\((.*)\)$/.exec(s);
  if (m) return {kind: m[1], nodes: m[2].split(',').map((x) => x.trim()).filter(Boolean)};
  if (s === 'all' || s === 'any') return {kind: s, nodes: []};
  return {kind: 'all', nodes: []};
}

// patternBuilder returns {el, value(), set(pattern), destroy()}: value() is
// {pattern} or {error} when the chosen kind needs nodes and none are picked.
export function patternBuilder(initial = 'all') {
  const name = uid('kind');
  let state = parsePattern(initial);
  // Names known to be nodes: picked from the hub's matches, confirmed by Add,
  // or given in the pattern. A name typed into single(…) may be half a name,
  // so only known ones carry over to multiple(…).
  const confirmed = new Set(state.nodes);
  const radios = KINDS.map(([kind, label, hint]) => {
    const input = h('input', {type: 'radio', name, value: kind, id: `${name}-${kind}`, checked: state.kind === kind,
      onchange: () => {
        if (kind === 'multiple') state.nodes = state.nodes.filter((n) => confirmed.has(n));
        state.kind = kind;
        renderPicker();
        preview();
      }});
    return h('span', {class: 'radio'}, input, h('label', {for: input.id}, label, ' ', h('small', {}, `(${hint})`)));
  });
  const picker = h('div', {class: 'node-picker'});
  const shown = h('output', {class: 'pattern-preview', 'aria-live': 'polite'});
  const el = h('fieldset', {class: 'pattern'},
    h('legend', {}, 'Pattern'),
    h('div', {class: 'radios'}, radios),
    picker,
    h('p', {class: 'muted'}, 'Pattern: ', shown));

  let search = null; // the node search of single or multiple
  let chips = null; // the chosen nodes of multiple

  function renderPicker() {
    if (search) search.destroy();
    search = null;
    chips = null;
    if (state.kind === 'single') {
      search = nodeSearch({id: `${name}-node`, label: 'Node',
        hint: 'Type the start of its name and pick a match, or type the whole name.',
        onPick: (n) => {
          confirmed.add(n);
          search.input.value = n;
          state.nodes = [n];
          preview();
        },
        onInput: (v) => {
          const t = v.trim();
          state.nodes = t ? [t] : [];
          preview();
        }});
      search.input.value = state.nodes[0] || '';
      replace(picker, search.el);
    } else if (state.kind === 'multiple') {
      const add = h('button', {type: 'button', class: 'node-add', onclick: () => addTyped()}, 'Add');
      search = nodeSearch({id: `${name}-nodes`, label: 'Add a node',
        hint: 'Type the start of a name and pick a match; Add (or Enter) takes the name as typed.',
        onPick: addNode, extra: add,
        // Enter with no match chosen adds the typed name rather than running
        // the query; in an empty box it runs the query.
        onEnter: (text) => {
          if (!text.trim()) return false;
          addTyped();
          return true;
        }});
      chips = h('div', {class: 'chips-box'});
      renderChips();
      replace(picker, search.el, chips);
    } else {
      replace(picker);
    }
  }

  // addNode chooses n and empties the search box, unless keep: the user has
  // typed on while the hub was asked about n.
  function addNode(n, keep = false) {
    confirmed.add(n);
    if (!state.nodes.includes(n)) state.nodes = [...state.nodes, n];
    if (!keep) {
      search.input.value = '';
      search.reset();
    }
    renderChips();
    preview();
    search.setHint(`${n} added; ${state.nodes.length} chosen.`);
  }

  // addTyped adds the name in the search box once the hub confirms it knows it.
  async function addTyped() {
    const s = search;
    const t = s.input.value.trim();
    if (!t) return;
    s.reset();
    if (!NAME.test(t)) {
      s.setHint(`"${t}" is not a node name: letters, digits, _ and -, up to 64.`);
      return;
    }
    try {
      const body = await api.nodes({prefix: t, limit: 1});
      const first = body && body.nodes && body.nodes[0];
      if (search !== s) return;
      if (!first || first.node !== t) {
        s.setHint(`The hub knows no node named "${t}".`);
        return;
      }
    } catch (err) {
      if (search === s) s.setHint(`Could not check the name: ${err.message}`);
      return;
    }
    addNode(t, s.input.value.trim() !== t);
  }

  function renderChips() {
    if (!chips) return;
    if (!state.nodes.length) {
      replace(chips, h('p', {class: 'muted chips-empty'}, 'No node chosen yet.'));
      return;
    }
    const items = state.nodes.map((n, i) => {
      const b = h('button', {type: 'button', class: 'chip-remove', 'aria-label': `Remove ${n}`, onclick: () => {
        state.nodes = state.nodes.filter((x) => x !== n);
        renderChips();
        preview();
        // Focus goes to the next chip, else the previous one, else the search.
        const rest = chips.querySelectorAll('.chip-remove');
        const to = rest[Math.min(i, rest.length - 1)];
        (to || search.input).focus();
      }}, '×');
      return h('li', {class: 'chip', dataset: {node: n}}, h('span', {class: 'code'}, n), b);
    });
    replace(chips, h('ul', {class: 'chips', 'aria-label': 'Chosen nodes'}, items));
  }

  function pattern() {
    if (state.kind === 'single') return state.nodes[0] ? `single(${state.nodes[0]})` : '';
    if (state.kind === 'multiple') return state.nodes.length ? `multiple(${state.nodes.join(',')})` : '';
    return state.kind;
  }

  function preview() {
    shown.textContent = pattern() || '(pick a node)';
  }

  renderPicker();
  preview();

  return {
    el,
    value() {
      const p = pattern();
      if (!p) return {error: state.kind === 'single' ? 'Choose a node for single(…).' : 'Choose at least one node for multiple(…).'};
      return {pattern: p};
    },
    set(p) {
      const next = parsePattern(p);
      // Running a query writes its pattern back here: leave an unchanged picker
      // alone, so that its input keeps focus and what was typed.
      if (next.kind === state.kind && next.nodes.join(',') === state.nodes.join(',')) return;
      state = next;
      for (const n of state.nodes) confirmed.add(n);
      for (const r of el.querySelectorAll(`input[name="${name}"]`)) r.checked = r.value === state.kind;
      renderPicker();
      preview();
    },
    destroy() {
      if (search) search.destroy();
    },
  };
}
