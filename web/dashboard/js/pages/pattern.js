// The pattern builder of the query console and the live tail: a choice of
// single / multiple / all / any and, for the first two, a picker of the nodes the
// hub knows.
import * as fleet from '../fleet.js';
import {h, uid, replace} from '../dom.js';

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
  const radios = KINDS.map(([kind, label, hint]) => {
    const input = h('input', {type: 'radio', name, value: kind, id: `${name}-${kind}`, checked: state.kind === kind,
      onchange: () => {
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

  let known = [];
  function nodeNames() {
    const names = new Set(known);
    for (const n of state.nodes) names.add(n);
    return [...names].sort();
  }

  function renderPicker() {
    if (state.kind === 'single') {
      const sel = h('select', {id: `${name}-node`, onchange: (e) => {
        state.nodes = e.target.value ? [e.target.value] : [];
        preview();
      }}, h('option', {value: ''}, 'choose a node…'), nodeNames().map((n) => h('option', {value: n}, n)));
      sel.value = state.nodes[0] || '';
      replace(picker, h('label', {for: sel.id}, 'Node'), sel);
    } else if (state.kind === 'multiple') {
      const names = nodeNames();
      const boxes = names.map((n) => {
        const cb = h('input', {type: 'checkbox', id: uid('node'), value: n, checked: state.nodes.includes(n),
          onchange: (e) => {
            const set = new Set(state.nodes);
            if (e.target.checked) set.add(n);
            else set.delete(n);
            state.nodes = names.filter((x) => set.has(x));
            preview();
          }});
        return h('span', {class: 'check'}, cb, h('label', {for: cb.id}, n));
      });
      replace(picker, h('fieldset', {class: 'nodes'}, h('legend', {}, 'Nodes'),
        boxes.length ? boxes : h('p', {class: 'muted'}, 'No nodes known yet.')));
    } else {
      replace(picker);
    }
  }

  function pattern() {
    if (state.kind === 'single') return state.nodes[0] ? `single(${state.nodes[0]})` : '';
    if (state.kind === 'multiple') return state.nodes.length ? `multiple(${state.nodes.join(',')})` : '';
    return state.kind;
  }

  function preview() {
    shown.textContent = pattern() || '(pick a node)';
  }

  const unsubscribe = fleet.subscribe((s) => {
    const names = s.nodes.map((n) => n.node);
    if (names.join('\u0000') === known.join('\u0000')) return;
    known = names;
    // Rebuilding the picker would move focus away from a control being used.
    if (!picker.contains(document.activeElement)) renderPicker();
  });
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
      state = parsePattern(p);
      for (const r of el.querySelectorAll(`input[name="${name}"]`)) r.checked = r.value === state.kind;
      renderPicker();
      preview();
    },
    destroy: unsubscribe,
  };
}
