// Small DOM helpers. Everything that came from the API (results, errors, logs, names) is set as text,
// never as HTML: a function's output cannot become markup on this page.
/* global document, Node */

/** h('td', {className: 'x', onclick}, 'text', childNode, ...) */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null) continue;
    if (k === 'dataset') Object.assign(el.dataset, v);
    else if (
      k === 'title' ||
      k === 'className' ||
      k === 'value' ||
      k === 'type' ||
      k === 'disabled' ||
      k === 'hidden' ||
      k.startsWith('on')
    )
      el[k] = v;
    else el.setAttribute(k, String(v));
  }
  return setChildren(el, ...children);
}

/** Replaces an element's children: nested arrays are flattened, null/undefined/false left out. */
export function setChildren(el, ...children) {
  el.replaceChildren();
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export const $ = (id) => document.getElementById(id);

/** Replaces a table's content: a header row and one row per item (cells are text or nodes). */
export function fillTable(table, head, rows, empty = 'nothing yet') {
  table.replaceChildren(
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        head.map((x) => h('th', {}, x)),
      ),
    ),
    h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: head.length, className: 'empty' }, empty))),
  );
}

export const badge = (status) => h('span', { className: `badge s-${String(status).toLowerCase()}` }, status);

export function ms(v) {
  if (v === undefined || v === null) return '';
  if (v < 1) return `${v.toFixed(2)} ms`;
  if (v < 1000) return `${Math.round(v)} ms`;
  if (v < 60000) return `${(v / 1000).toFixed(2)} s`;
  return `${Math.floor(v / 60000)} m ${Math.round((v % 60000) / 1000)} s`;
}

export function ago(iso) {
  if (!iso) return '';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

/** How long until a time to come: "in 5s", "in 3m"; "now" once it passed. */
export function until(iso) {
  if (!iso) return '';
  const s = Math.round((Date.parse(iso) - Date.now()) / 1000);
  if (s <= 0) return 'now';
  if (s < 60) return `in ${s}s`;
  if (s < 3600) return `in ${Math.floor(s / 60)}m`;
  if (s < 86400) return `in ${Math.floor(s / 3600)}h`;
  return `in ${Math.floor(s / 86400)}d`;
}

/** A time as a person reads it here: the local time today, else the local date and time. */
export function clock(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toDateString() === new Date().toDateString() ? d.toLocaleTimeString() : d.toLocaleString();
}

export function preview(text, max = 60) {
  if (!text) return '';
  const one = String(text).replace(/\s+/g, ' ').trim();
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
}

/** A result as a person reads it: JSON pretty-printed, anything else as it came. */
export function pretty(text) {
  if (text === undefined || text === null) return '';
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return String(text);
  }
}

export const tile = (label, value, cls = '') =>
  h('div', { className: `tile ${cls}` }, h('div', { className: 'tile-value' }, value), h('div', { className: 'tile-label' }, label));

/** Fills a <select> with names, keeping the current choice when it is still there. */
export function fillSelect(select, names, { any } = {}) {
  const keep = select.value;
  select.replaceChildren(...(any ? [h('option', { value: '' }, any)] : []), ...names.map((n) => h('option', { value: n }, n)));
  if (names.includes(keep) || (any && keep === '')) select.value = keep;
}
