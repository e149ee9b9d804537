// Overview: health tiles, nodes (state, load, warm containers per function), functions (versions,
// policy, recent latency from GET /metrics/functions) and runtimes.
import { api } from './api.js';
import { $, ago, fillTable, h, ms, tile } from './dom.js';

const versionsSeen = new Map(); // function -> {version, count}: GET /functions/:name only when it changed

const counts = (obj) =>
  Object.entries(obj || {})
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${n}`)
    .join(' · ');

const chips = (warm) => {
  const items = Object.entries(warm || {}).filter(([, n]) => n > 0);
  return items.length
    ? h(
        'span',
        { className: 'chips' },
        items.map(([fn, n]) => h('span', { className: 'chip' }, `${fn} ×${n}`)),
      )
    : '—';
};

function nodeRows(nodes) {
  return nodes.map((n) =>
    h(
      'tr',
      {},
      h('td', { className: 'mono' }, n.id),
      h('td', {}, h('span', { className: `badge n-${n.state}` }, n.state)),
      h('td', {}, `${n.running} / ${n.capacity}`),
      h('td', {}, n.miniworkers),
      h('td', {}, n.policy),
      h('td', {}, counts(n.containers) || '—'),
      h('td', {}, chips(n.warm)),
      h('td', {}, counts(n.stems) || '—'),
      h('td', {}, `${(n.lastSeenMsAgo / 1000).toFixed(1)} s ago`),
    ),
  );
}

async function versionCount(fn) {
  const seen = versionsSeen.get(fn.functionName);
  if (seen && seen.version === fn.version) return seen.count;
  const detail = await api(`/functions/${encodeURIComponent(fn.functionName)}`);
  const count = detail.versions.length;
  versionsSeen.set(fn.functionName, { version: fn.version, count });
  return count;
}

// "3 · 180 ms": cold starts since the API started, and how long the recent ones took (median).
const coldText = (s) => (s.coldStarts ? `${s.coldStarts} · ${ms(s.coldP50)}` : '0');

async function functionRows(fns, stats) {
  const rows = [];
  for (const f of fns) {
    const s = stats[f.functionName] || {};
    const n = await versionCount(f).catch(() => '?');
    rows.push(
      h(
        'tr',
        {},
        h('td', { className: 'strong' }, f.functionName),
        h('td', {}, f.runtimeName),
        h('td', {}, `v${f.version}`, h('small', {}, ` of ${n}`)),
        h('td', {}, f.settings.policy || 'node default'),
        h('td', {}, `${f.settings.timeout} s · ${f.settings.memory} MiB`),
        h('td', {}, s.calls ?? 0),
        h('td', { className: s.errors ? 'bad' : '' }, s.errors ?? 0),
        h('td', {}, ms(s.p50)),
        h('td', {}, ms(s.p95)),
        h('td', { title: 'runs that began by starting a container, and the median start' }, coldText(s)),
        h('td', {}, ago(s.lastAt)),
      ),
    );
  }
  return rows;
}

const runtimeRows = (rts) =>
  rts.map((r) =>
    h(
      'tr',
      {},
      h('td', { className: 'strong' }, r.name),
      h('td', { className: 'mono' }, r.image),
      h('td', { className: 'mono' }, r.path),
      h('td', { className: 'mono' }, r.dependencies || '—'),
      h('td', { className: 'mono' }, r.run),
      h('td', {}, r.loader ? 'warm loader' : 'run per call'),
    ),
  );

/**
 * Loads everything the overview shows; returns the function names (for the other views' selects). The
 * nodes are the operator's to see: with `nodes` false (a namespace's key) they are not asked for.
 */
export async function refreshOverview({ nodes: withNodes = true } = {}) {
  const [health, nodes, runtimes, fns, stats] = await Promise.all([
    api('/health').catch((e) => ({ ok: false, db: e.message, nodes: 0, queued: 0 })),
    withNodes ? api('/nodes') : [],
    api('/runtimes?detail=true'),
    api('/functions?detail=true'),
    api('/metrics/functions'),
  ]);
  const total = Object.values(stats).reduce((a, s) => a + s.calls, 0);
  const errors = Object.values(stats).reduce((a, s) => a + s.errors, 0);
  $('tiles').replaceChildren(
    tile('nodes alive', health.nodes, health.nodes ? 'good' : 'bad'),
    tile('calls queued', health.queued),
    tile('functions', fns.length),
    tile('calls since start', total),
    tile('failed', errors, errors ? 'bad' : ''),
    tile('database', health.db, health.ok ? 'good' : 'bad'),
  );
  if (withNodes)
    fillTable(
      $('nodes-table'),
      ['node', 'state', 'running / capacity', 'miniworkers', 'policy', 'containers', 'warm per function', 'stem cells', 'heartbeat'],
      nodeRows(nodes),
      'no node has joined',
    );
  fillTable(
    $('functions-table'),
    ['function', 'runtime', 'version', 'policy', 'limits', 'calls', 'failed', 'p50', 'p95', 'cold starts', 'last call'],
    await functionRows(fns, stats),
    'no function deployed: zfaas deploy NAME DIR',
  );
  fillTable($('runtimes-table'), ['runtime', 'image', 'path', 'dependencies', 'run', 'mode'], runtimeRows(runtimes), 'no runtime');
  return fns.map((f) => f.functionName);
}
