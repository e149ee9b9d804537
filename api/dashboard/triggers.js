// Triggers: the broker triggers of every function (GET /functions, then GET /functions/NAME/triggers for
// each), a group of rows per function with each trigger's state and counts: messages done and failed,
// calls in flight, the lag at the broker, long messages refused, and the last error.
import { api } from './api.js';
import { $, ago, fillTable, h } from './dom.js';

function row(t) {
  const s = t.stats ?? {};
  const n = (v) => (v === undefined ? '—' : String(v));
  return h(
    'tr',
    { dataset: { trigger: t.id, state: t.state } },
    h('td', { className: 'strong' }, t.funcName),
    h('td', { className: 'mono' }, t.id),
    h('td', {}, t.type),
    h('td', { className: 'mono', title: t.url }, t.source),
    h('td', {}, t.state),
    h('td', { dataset: { count: 'delivered' } }, n(s.delivered)),
    h('td', { dataset: { count: 'failed' } }, n(s.failed)),
    h('td', {}, n(s.inFlight)),
    h('td', {}, n(s.lag)),
    h('td', {}, n(s.rejected?.length)),
    h('td', { title: s.lastError ?? '' }, s.lastError ? s.lastError.slice(0, 60) : ''),
    h('td', {}, s.at ? ago(s.at) : '—'),
  );
}

export async function refreshTriggers() {
  const names = await api('/functions');
  // A function deleted meanwhile answers 404: it has no trigger left to show.
  const lists = await Promise.all(names.map((n) => api(`/functions/${encodeURIComponent(n)}/triggers`).catch(() => [])));
  const all = lists.flat().sort((a, b) => a.funcName.localeCompare(b.funcName) || a.createdAt.localeCompare(b.createdAt));
  fillTable(
    $('triggers-table'),
    ['function', 'id', 'broker', 'source', 'state', 'done', 'failed', 'in flight', 'lag', 'too long', 'last error', 'counted'],
    all.map(row),
    'no trigger: zfaas trigger add NAME --type redis --url redis://127.0.0.1:6379 --source STREAM',
  );
}
