// Callback deliveries: the newest calls that carry a callback URL (GET /calls?format=list), with the
// state of their delivery (waiting for the call to end, pending, delivered, failed), how many tries were
// made, what the last one got (the receiver's HTTP status, or why none came) and when the next is due.
import { api } from './api.js';
import { $, ago, badge, clock, fillTable, h, preview, until } from './dom.js';

const SCANNED = 300; // the newest calls looked at

function lastAnswer(d) {
  if (!d) return '—';
  if (d.status !== undefined) return h('span', { className: d.status >= 200 && d.status < 300 ? '' : 'bad' }, `HTTP ${d.status}`);
  return h('span', { className: 'bad', title: d.error || '' }, preview(d.error || 'no answer', 50));
}

function row(c) {
  const cb = c.callback;
  const tries = cb.deliveries || [];
  const last = tries[tries.length - 1];
  return h(
    'tr',
    { dataset: { call: c.callNum } },
    h('td', {}, c.callNum),
    h('td', { className: 'strong' }, c.version ? `${c.funcName}@${c.version}` : c.funcName),
    h('td', {}, badge(c.status)),
    h('td', {}, h('span', { className: `badge d-${cb.state}` }, cb.state)),
    h('td', {}, tries.length),
    h('td', {}, lastAnswer(last)),
    h('td', {}, last ? ago(last.at) : '—'),
    h('td', {}, cb.state === 'pending' && cb.nextAt ? [clock(cb.nextAt), h('small', {}, ` ${until(cb.nextAt)}`)] : '—'),
    h('td', { className: 'mono', title: cb.url }, preview(cb.url, 50)),
  );
}

export async function refreshCallbacks() {
  const calls = await api(`/calls?format=list&limit=${SCANNED}`);
  const withCallback = calls.filter((c) => c.callback && typeof c.callback === 'object');
  $('callbacks-note').textContent = `of the newest ${SCANNED} calls, the ${withCallback.length} with a callback URL`;
  fillTable(
    $('callbacks-table'),
    ['call', 'function', 'call status', 'delivery', 'tries', 'last answer', 'last try', 'next try', 'URL'],
    withCallback.map(row),
    'no recent call has a callback URL (invoke with callbackUrl, or the X-Callback-Url header)',
  );
}
