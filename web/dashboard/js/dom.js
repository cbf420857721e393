// DOM helpers. Everything shown on the page is built with these, so that text from
// the API (node names, event data, error messages) is always set as text, never
// parsed as HTML.

// h creates an element. attrs: plain attributes, plus "class", "text", "dataset",
// event handlers as "onclick" etc. (functions), and boolean properties (checked,
// disabled, selected, hidden) set as properties. Children are nodes, strings
// (become text nodes), or nested arrays; null, undefined and false are skipped.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false || k === 'value') continue;
    if (k === 'text') el.textContent = String(v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'checked' || k === 'disabled' || k === 'selected' || k === 'hidden') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  // After the children, so that a <select> has its options when its value is set.
  if (attrs && attrs.value !== undefined && attrs.value !== null) el.value = attrs.value;
  return el;
}

// append adds children to el with the same rules as h.
export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// replace swaps all children of el for the given ones.
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

// field wraps a control with its visible label (and an optional hint, linked by
// aria-describedby).
export function field(label, control, hint) {
  const id = control.id || (control.id = uid('f'));
  const kids = [h('label', {for: id}, label), control];
  if (hint) {
    const hid = id + '-hint';
    control.setAttribute('aria-describedby', [control.getAttribute('aria-describedby'), hid].filter(Boolean).join(' '));
    kids.push(h('small', {id: hid, class: 'hint'}, hint));
  }
  return h('div', {class: 'field'}, kids);
}

let counter = 0;

// uid returns a page-unique id with the given prefix.
export function uid(prefix) {
  counter += 1;
  return `${prefix}-${counter}`;
}
