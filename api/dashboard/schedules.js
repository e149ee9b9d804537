// Schedules: the cron triggers of every function (GET /functions, then GET /functions/NAME/schedules for
// each), with the next tick and the last run (its tick, when it fired, and the call it made).
import { api } from './api.js';
import { $, ago, clock, fillTable, h, preview, until } from './dom.js';

function row(s) {
  const params = JSON.stringify(s.params ?? {});
  return h(
    'tr',
    { dataset: { schedule: s.id } },
    h('td', { className: 'strong' }, s.funcName),
    h('td', { className: 'mono' }, s.cron),
    h('td', {}, s.timezone),
    h('td', {}, s.missed),
    h('td', { className: 'mono', title: params }, preview(params, 40)),
    h('td', {}, s.next ? [clock(s.next), h('small', {}, ` ${until(s.next)}`)] : '—'),
    h('td', {}, s.lastRun ? [clock(s.lastRun.tick), h('small', {}, ` ${ago(s.lastRun.at)}`)] : 'never'),
    h('td', {}, s.lastRun ? `call ${s.lastRun.callNum}` : '—'),
    h('td', {}, ago(s.createdAt)),
  );
}

export async function refreshSchedules() {
  const names = await api('/functions');
  // A function deleted meanwhile answers 404: it has no schedule left to show.
  const lists = await Promise.all(names.map((n) => api(`/functions/${encodeURIComponent(n)}/schedules`).catch(() => [])));
  const all = lists.flat().sort((a, b) => a.funcName.localeCompare(b.funcName) || (a.next || '~').localeCompare(b.next || '~'));
  fillTable(
    $('schedules-table'),
    ['function', 'cron', 'time zone', 'missed', 'params', 'next run', 'last run', 'last call', 'created'],
    all.map(row),
    "no schedule: zfaas schedule add NAME --cron '0 9 * * 1-5'",
  );
}
