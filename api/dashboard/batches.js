// Batches: fan one function out over many params (POST /batch/:fn), then watch its progress and
// statistics (GET /batch/:id) and its first results in input order (GET /batch/:id/results).
/* global setTimeout, clearTimeout */
import { api } from './api.js';
import { $, badge, fillTable, h, ms, preview, tile } from './dom.js';

const POLL_MS = 400;
const SHOWN = 50; // result rows on the page
let watching = null; // {id, timer}

/** A JSON array, or one JSON value per line. */
export function parseItems(text) {
  const t = text.trim();
  if (t.startsWith('[')) return JSON.parse(t);
  return t
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l, i) => {
      try {
        return JSON.parse(l);
      } catch (e) {
        throw new Error(`line ${i + 1}: ${e.message}`);
      }
    });
}

function generate() {
  const n = Math.max(1, Math.min(100000, Number($('batch-count').value) || 1));
  const template = $('batch-template').value;
  const lines = [];
  for (let i = 0; i < n; i++) lines.push(JSON.stringify(JSON.parse(template.replaceAll('$i', String(i)))));
  $('batch-items').value = lines.join('\n');
}

function showProgress(p) {
  $('batch-view').hidden = false;
  $('batch-title').textContent = `Batch ${p.batchId} · ${p.funcName}@${p.version}`;
  const state = $('batch-state');
  state.textContent = p.state;
  state.className = `badge b-${p.state}`;
  $('batch-bar-done').style.width = `${(100 * p.done) / p.size}%`;
  $('batch-bar-failed').style.width = `${(100 * p.failed) / p.size}%`;
  $('batch-stats').replaceChildren(
    tile('items', p.size),
    tile('done', p.done, 'good'),
    tile('failed', p.failed, p.failed ? 'bad' : ''),
    tile('pending', p.pending),
    tile('p50', ms(p.p50) || '—'),
    tile('p95', ms(p.p95) || '—'),
    tile('calls / s', p.callsPerSecond),
    tile('elapsed', ms(p.elapsedMs)),
  );
}

async function showResults(p) {
  const r = await api(`/batch/${p.batchId}/results?limit=${SHOWN}`);
  $('batch-results-note').textContent =
    p.size > SHOWN ? `(the first ${SHOWN} of ${p.size}; all of them: GET /batch/${p.batchId}/results)` : '';
  fillTable(
    $('batch-results'),
    ['#', 'call', 'status', 'run time', 'result / error'],
    r.items.map((it) =>
      h(
        'tr',
        {},
        h('td', {}, it.index),
        h('td', {}, it.callNum ?? '—'),
        h('td', {}, badge(it.status)),
        h('td', {}, ms(it.durationMs)),
        h('td', { className: it.status === 'DONE' ? 'mono' : 'mono bad' }, preview(it.status === 'DONE' ? it.result : it.error, 80)),
      ),
    ),
  );
}

export async function refreshBatches() {
  const list = await api('/batches');
  fillTable(
    $('batches-table'),
    ['batch', 'function', 'state', 'done', 'failed', 'items', 'p50', 'p95', 'calls / s', 'started'],
    list.map((b) =>
      h(
        'tr',
        { className: 'clickable', onclick: () => watch(b.batchId) },
        h('td', { className: 'mono' }, b.batchId),
        h('td', { className: 'strong' }, `${b.funcName}@${b.version}`),
        h('td', {}, h('span', { className: `badge b-${b.state}` }, b.state)),
        h('td', {}, b.done),
        h('td', { className: b.failed ? 'bad' : '' }, b.failed),
        h('td', {}, b.size),
        h('td', {}, ms(b.p50)),
        h('td', {}, ms(b.p95)),
        h('td', {}, b.callsPerSecond),
        h('td', {}, new Date(b.createdAt).toLocaleTimeString()),
      ),
    ),
    'no batch yet',
  );
}

/** Follows one batch until it finishes (a newer watch replaces it). */
export function watch(id) {
  if (watching) clearTimeout(watching.timer);
  const me = { id, timer: 0 };
  watching = me;
  let ticks = 0;
  const tick = async () => {
    if (watching !== me) return;
    try {
      const p = await api(`/batch/${id}`);
      showProgress(p);
      const last = p.state === 'finished';
      if (last || ticks++ % 3 === 0) await Promise.all([showResults(p), refreshBatches()]);
      if (last) return;
    } catch (e) {
      $('batch-hint').textContent = e.message;
    }
    if (watching === me) me.timer = setTimeout(tick, POLL_MS);
  };
  void tick();
}

export function initBatches() {
  $('batch-generate').addEventListener('click', () => {
    try {
      generate();
      $('batch-hint').textContent = '';
    } catch (e) {
      $('batch-hint').textContent = `the template is not JSON once $i is replaced: ${e.message}`;
    }
  });
  $('batch-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const hint = $('batch-hint');
    hint.className = 'hint';
    let items;
    try {
      items = parseItems($('batch-items').value);
      if (!Array.isArray(items) || items.length === 0) throw new Error('give at least one item');
    } catch (e) {
      hint.textContent = `params: ${e.message}`;
      hint.className = 'hint bad';
      return;
    }
    const fn = $('batch-fn').value;
    try {
      const b = await api(`/batch/${encodeURIComponent(fn)}`, { method: 'POST', json: items });
      hint.textContent = `batch ${b.batchId}: ${b.size} calls of ${fn}@${b.version}`;
      watch(b.batchId);
    } catch (e) {
      hint.textContent = e.message;
      hint.className = 'hint bad';
    }
  });
}
