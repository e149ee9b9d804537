// Calls: the newest calls, kept up to date by the live stream without reloading; a click shows one call
// whole (params, result, error, logs).
/* global requestAnimationFrame */
import { api } from './api.js';
import { $, ago, badge, fillTable, h, ms, pretty, preview, setChildren } from './dom.js';

const KEEP = 150;
const calls = new Map(); // callNum -> the call as last seen (from GET /calls or an event)
let pending = false;

const filter = () => $('calls-filter').value;

function row(c) {
  const text = c.status === 'DONE' ? preview(c.result) : preview(c.error);
  return h(
    'tr',
    { dataset: { call: c.callNum }, className: 'clickable', onclick: () => showCall(c.callNum) },
    h('td', {}, c.callNum),
    h('td', { className: 'strong' }, c.version ? `${c.funcName}@${c.version}` : c.funcName),
    h('td', {}, badge(c.status)),
    h('td', { className: 'mono' }, preview(c.node, 16)),
    h('td', {}, ms(c.durationMs)),
    h('td', {}, ms(c.latencyMs)),
    h('td', { className: c.status === 'DONE' ? 'mono' : 'mono bad' }, text),
    h('td', {}, ago(c.createdAt || c.at)),
  );
}

function render() {
  pending = false;
  const list = [...calls.values()].sort((a, b) => b.callNum - a.callNum);
  for (const c of list.slice(KEEP)) calls.delete(c.callNum);
  fillTable(
    $('calls-table'),
    ['call', 'function', 'status', 'node', 'run time', 'latency', 'result / error', 'created'],
    list.slice(0, KEEP).map(row),
    'no calls yet',
  );
}

const schedule = () => {
  if (pending) return;
  pending = true;
  requestAnimationFrame(render);
};

export async function loadCalls() {
  const fn = filter();
  const list = await api(`/calls?format=list&limit=100${fn ? `&funcName=${encodeURIComponent(fn)}` : ''}`);
  calls.clear();
  for (const c of list) calls.set(c.callNum, c);
  render();
}

/** A live event: a call accepted (PENDING) or finished. */
export function onCallEvent(e) {
  const fn = filter();
  if (fn && e.funcName !== fn) return;
  const old = calls.get(e.callNum) || {};
  calls.set(e.callNum, { ...old, ...e, createdAt: old.createdAt || e.at });
  schedule();
}

async function showCall(n) {
  const box = $('call-detail');
  box.hidden = false;
  setChildren(box, h('h2', {}, `Call ${n}`), h('p', { className: 'hint' }, 'loading…'));
  try {
    const c = await api(`/call/${n}`);
    const field = (k, v) => h('div', { className: 'field' }, h('span', {}, k), h('span', { className: 'mono' }, v ?? ''));
    setChildren(
      box,
      h(
        'div',
        { className: 'card-head' },
        h('h2', {}, `Call ${c.callNum}`),
        badge(c.status),
        h('button', { type: 'button', className: 'secondary', onclick: () => (box.hidden = true) }, 'close'),
      ),
      field('function', c.version ? `${c.funcName}@${c.version}` : c.funcName),
      field('node', c.node),
      field('attempts', c.attempts),
      field('created', c.createdAt),
      field('run time', ms(c.durationMs)),
      h('h3', {}, 'params'),
      h('pre', {}, JSON.stringify(c.params, null, 2)),
      c.status === 'DONE' ? [h('h3', {}, 'result'), h('pre', {}, pretty(c.result))] : null,
      c.error ? [h('h3', {}, 'error'), h('pre', { className: 'bad' }, c.error)] : null,
      c.logs ? [h('h3', {}, 'logs'), h('pre', {}, c.logs)] : null,
    );
  } catch (e) {
    setChildren(box, h('h2', {}, `Call ${n}`), h('p', { className: 'bad' }, e.message));
  }
}

export function initCalls() {
  $('calls-filter').addEventListener('change', () => void loadCalls().catch(() => {}));
}
