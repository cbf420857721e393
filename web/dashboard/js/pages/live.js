// The live tail: a live query over server-sent events (GET /api/v1/query/live),
// newest event on top, with a bounded number of rows. Pausing keeps the
// connection and buffers new events, up to the row limit; resuming shows them.
import * as api from '../api.js';
import * as format from '../format.js';
import {h, field} from '../dom.js';
import {patternBuilder} from './pattern.js';
import {eventRow, EVENT_COLUMNS, whereError} from './events.js';

const LIMITS = [100, 200, 500, 1000];

export default {
  title: () => 'Live tail',
  mount(main, {params}) {
    const builder = patternBuilder(params.get('pattern') || 'all');
    const where = h('input', {type: 'text', id: 'l-where', class: 'code', autocomplete: 'off', spellcheck: 'false',
      placeholder: 'temp > 30'});
    const whereErr = h('div', {id: 'l-where-error', class: 'where-error', hidden: true});
    const stream = h('input', {type: 'text', id: 'l-stream', autocomplete: 'off', spellcheck: 'false', placeholder: 'all streams'});
    const rowsSel = h('select', {id: 'l-rows', value: String(Number(params.get('rows')) || 200)},
      LIMITS.map((n) => h('option', {value: String(n)}, String(n))));
    const formError = h('p', {class: 'error', role: 'alert', hidden: true});
    const start = h('button', {type: 'submit', class: 'primary', id: 'l-start'}, 'Start');
    const stop = h('button', {type: 'button', id: 'l-stop', disabled: true, onclick: () => close('Stopped.')}, 'Stop');
    const pause = h('button', {type: 'button', id: 'l-pause', disabled: true, 'aria-pressed': 'false', onclick: togglePause}, 'Pause');
    const statusEl = h('p', {id: 'l-status', class: 'live-status', role: 'status'}, 'Not started.');
    const countsEl = h('p', {id: 'l-counts', class: 'muted'});
    const complEl = h('p', {id: 'l-complete', class: 'muted', 'aria-live': 'polite'});
    const form = h('form', {id: 'live-form', class: 'panel', novalidate: true, 'aria-labelledby': 'live-h'},
      builder.el,
      h('div', {class: 'grid'},
        h('div', {class: 'field wide'},
          h('label', {for: where.id}, 'Where'), where,
          h('small', {id: 'l-where-hint', class: 'hint'}, 'Same expressions as the query console. Empty shows every event.'),
          whereErr),
        field('Stream', stream, 'Empty means every stream.'),
        field('Rows kept', rowsSel, 'Older rows are removed past this many.')),
      h('div', {class: 'actions'}, start, stop, pause),
      formError);
    where.setAttribute('aria-describedby', 'l-where-hint l-where-error');
    const tbody = h('tbody');
    const emptyRow = h('tr', {}, h('td', {colspan: EVENT_COLUMNS.length, class: 'empty'}, 'No events yet.'));
    tbody.append(emptyRow);
    main.append(
      h('h1', {id: 'live-h', tabindex: '-1'}, 'Live tail'),
      form,
      h('section', {'aria-labelledby': 'tail-h'},
        h('h2', {id: 'tail-h'}, 'Events as they arrive'),
        h('p', {class: 'muted'}, 'While paused, new events are buffered (up to the row limit; beyond it the oldest buffered ones are dropped) and shown when you resume. The connection stays open.'),
        statusEl, countsEl, complEl,
        h('div', {class: 'table-wrap', tabindex: '0', role: 'region', 'aria-labelledby': 'tail-h'},
          h('table', {id: 'l-events', class: 'events'},
            h('caption', {}, 'Matching events, newest first'),
            h('thead', {}, h('tr', {}, EVENT_COLUMNS.map((c) => h('th', {scope: 'col', class: c === 'Seq' ? 'num' : null}, c)))),
            tbody))));

    let source = null;
    let paused = false;
    let buffered = []; // events held while paused
    let pending = []; // events waiting for the next frame
    let frame = 0;
    let received = 0;
    let droppedWhilePaused = 0;
    let gen = 0;

    const limit = () => Number(rowsSel.value) || 200;

    function setStatus(text, cls = '') {
      statusEl.className = `live-status ${cls}`;
      if (statusEl.textContent !== text) statusEl.textContent = text;
    }

    function showCounts() {
      countsEl.textContent = `${format.int(received)} received since start · ${format.int(tbody.querySelectorAll('tr[data-key]').length)} shown` +
        (paused ? ` · ${format.int(buffered.length)} buffered` : '') +
        (droppedWhilePaused ? ` · ${format.int(droppedWhilePaused)} dropped while paused` : '');
    }

    function readForm() {
      const p = builder.value();
      if (p.error) return {error: p.error};
      where.value = where.value.trim();
      const q = new URLSearchParams({pattern: p.pattern});
      if (where.value) q.set('where', where.value);
      if (stream.value.trim()) q.set('stream', stream.value.trim());
      q.set('rows', rowsSel.value);
      return {params: q};
    }

    function fillForm(p) {
      builder.set(p.get('pattern') || 'all');
      where.value = p.get('where') || '';
      stream.value = p.get('stream') || '';
      if (p.get('rows')) rowsSel.value = p.get('rows');
    }

    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const r = readForm();
      formError.hidden = !r.error;
      formError.textContent = r.error || '';
      if (r.error) return;
      const hash = `#/live?${r.params}`;
      if (location.hash === hash) open(r.params);
      else location.hash = hash;
    });

    function flush() {
      frame = 0;
      if (!pending.length) return;
      const max = limit();
      const batch = pending.length > max ? pending.slice(-max) : pending;
      pending = [];
      emptyRow.remove();
      const frag = document.createDocumentFragment();
      for (let i = batch.length - 1; i >= 0; i--) frag.append(eventRow(batch[i]));
      tbody.prepend(frag);
      while (tbody.rows.length > max) tbody.lastElementChild.remove();
      showCounts();
    }

    function show(ev) {
      pending.push(ev);
      if (!frame) frame = requestAnimationFrame(flush);
    }

    function onEvent(e) {
      let ev;
      try {
        ev = JSON.parse(e.data);
      } catch {
        return;
      }
      received++;
      if (paused) {
        buffered.push(ev);
        if (buffered.length > limit()) {
          buffered.shift();
          droppedWhilePaused++;
        }
        showCounts();
        return;
      }
      show(ev);
    }

    function togglePause() {
      paused = !paused;
      pause.setAttribute('aria-pressed', String(paused));
      pause.textContent = paused ? 'Resume' : 'Pause';
      if (paused) {
        setStatus('Paused: new events are buffered and shown on resume.', 'paused');
      } else {
        for (const ev of buffered) show(ev);
        buffered = [];
        setStatus('Live: waiting for matching events.', 'live');
      }
      showCounts();
    }

    function close(reason, cls = '') {
      gen++;
      if (source) source.close();
      source = null;
      stop.disabled = true;
      pause.disabled = true;
      if (paused) togglePause();
      setStatus(reason, cls);
    }

    async function open(p) {
      close('Connecting…');
      const my = gen;
      whereErr.hidden = true;
      where.removeAttribute('aria-invalid');
      formError.hidden = true;
      const q = {pattern: p.get('pattern'), where: p.get('where') || '', stream: p.get('stream') || ''};
      // EventSource does not expose an error body, so the pattern and predicate
      // are checked first by a query over events from now on (next to none).
      try {
        await api.query({...q, from: new Date().toISOString(), limit: 1});
      } catch (err) {
        if (my !== gen) return;
        if (err.status === 400 && /^where:/.test(err.message)) whereError(whereErr, where, err.message);
        else {
          formError.hidden = false;
          formError.textContent = err.message;
        }
        setStatus('Not started.');
        return;
      }
      if (my !== gen) return;
      received = 0;
      droppedWhilePaused = 0;
      buffered = [];
      const es = new EventSource(api.liveURL(q));
      source = es;
      stop.disabled = false;
      pause.disabled = false;
      es.onopen = () => {
        if (source === es && !paused) setStatus('Live: waiting for matching events.', 'live');
      };
      es.onmessage = (e) => {
        if (source === es) onEvent(e);
      };
      // Every few seconds the hub says how complete its data of the scope
      // is: an incomplete node may still send events older than those shown.
      es.addEventListener('completeness', (e) => {
        if (source !== es) return;
        let c;
        try {
          c = JSON.parse(e.data);
        } catch {
          return;
        }
        const open = Object.keys(c.incomplete || {}).sort();
        const more = c.more_incomplete || 0;
        complEl.dataset.complete = String(c.complete);
        complEl.dataset.nodes = String(c.nodes);
        complEl.textContent = `${format.int(c.complete)} of ${format.int(c.nodes)} nodes in scope complete` +
          (open.length ? `; still to send: ${open.slice(0, 5).join(', ')}${open.length + more > 5 ? ` and ${format.int(open.length + more - 5)} more` : ''}` : '.');
      });
      es.addEventListener('error', (e) => {
        if (source !== es) return;
        // A server-sent "event: error" carries the API's error body; a failed
        // connection has no data, and EventSource retries it by itself.
        if (e.data) {
          let msg = e.data;
          try {
            msg = JSON.parse(e.data).error.message;
          } catch {
            // keep the raw text
          }
          close(`The hub ended the live query: ${msg}. Press Start to follow again.`, 'bad');
        } else if (es.readyState === EventSource.CLOSED) {
          close('Connection closed by the hub. Press Start to try again.', 'bad');
        } else {
          setStatus('Connection lost; reconnecting… (events in between are not replayed)', 'bad');
        }
      });
      showCounts();
    }

    if (params.get('pattern')) {
      fillForm(params);
      open(params);
    }

    return {
      update(p) {
        fillForm(p);
        if (p.get('pattern')) open(p);
      },
      destroy() {
        close('Stopped.');
        if (frame) cancelAnimationFrame(frame);
        builder.destroy();
      },
    };
  },
};
