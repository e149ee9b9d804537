// Dead letters: calls that failed every run their function's `retries` allowed (GET /dead-letters), each
// with a Replay button (POST /dead-letters/N/replay: a new call with the same params) and a Dismiss
// button (DELETE /dead-letters/N), both asking first.
/* global window */
import { api } from './api.js';
import { $, ago, badge, fillTable, h, preview } from './dom.js';

const SHOWN = 200;

function done(text, bad = false) {
  const el = $('dead-letters-done');
  el.textContent = text;
  el.className = bad ? 'hint bad' : 'hint';
  el.hidden = !text;
}

async function act(c, what) {
  const name = c.version ? `${c.funcName}@${c.version}` : c.funcName;
  const question =
    what === 'replay'
      ? `Replay call ${c.callNum} of ${name}? A new call runs with the same params, on the function's current version.`
      : `Dismiss call ${c.callNum} of ${name}? It leaves the dead letters without being run again.`;
  if (!window.confirm(question)) return;
  try {
    if (what === 'replay') {
      const call = await api(`/dead-letters/${c.callNum}/replay`, { method: 'POST', json: {} });
      done(`call ${c.callNum} replayed as call ${call.callNum}`);
    } else {
      await api(`/dead-letters/${c.callNum}`, { method: 'DELETE' });
      done(`call ${c.callNum} dismissed`);
    }
  } catch (e) {
    done(`call ${c.callNum}: ${e.message}`, true);
  }
  await refreshDeadLetters().catch(() => {});
}

function row(c) {
  const buttons = h(
    'span',
    { className: 'actions' },
    h('button', { type: 'button', className: 'small', dataset: { action: 'replay' }, onclick: () => void act(c, 'replay') }, 'Replay'),
    h(
      'button',
      { type: 'button', className: 'small secondary', dataset: { action: 'dismiss' }, onclick: () => void act(c, 'dismiss') },
      'Dismiss',
    ),
  );
  return h(
    'tr',
    { dataset: { call: c.callNum } },
    h('td', {}, c.callNum),
    h(
      'td',
      { className: 'strong' },
      c.version ? `${c.funcName}@${c.version}` : c.funcName,
      c.replayOf ? h('small', {}, ` replay of call ${c.replayOf}`) : null,
    ),
    h('td', {}, badge(c.status)),
    h('td', {}, c.attempts),
    h('td', { className: 'mono bad', title: c.error || '' }, preview((c.error || '').split('\n')[0], 80)),
    h('td', {}, ago(c.finishedAt || c.createdAt)),
    h('td', {}, buttons),
  );
}

export async function refreshDeadLetters() {
  const list = await api(`/dead-letters?limit=${SHOWN}`);
  $('dead-letters-count').textContent = list.length >= SHOWN ? `the newest ${SHOWN}` : `${list.length} listed`;
  fillTable($('dead-letters-table'), ['call', 'function', 'status', 'runs', 'last error', 'failed', ''], list.map(row), 'no dead letter');
}
