// The dashboard's entry: views by URL hash, the token (or key) field, who it acts as (GET /whoami: its
// namespace and role, in the header; views the role cannot use are hidden), the live stream, refreshes.
/* global window, setInterval, document */
import { api, liveCalls, onUnauthorized, token } from './api.js';
import { initBatches, refreshBatches } from './batches.js';
import { refreshCallbacks } from './callbacks.js';
import { initCalls, loadCalls, onCallEvent } from './calls.js';
import { initCharts, refreshCharts } from './charts.js';
import { refreshDeadLetters } from './dead-letters.js';
import { $, fillSelect } from './dom.js';
import { initInvoke } from './invoke.js';
import { refreshOverview } from './overview.js';
import { refreshSchedules } from './schedules.js';
import { refreshTriggers } from './triggers.js';
import { initSecrets, refreshSecrets } from './secrets.js';

const VIEWS = ['overview', 'calls', 'charts', 'schedules', 'triggers', 'callbacks', 'dead-letters', 'invoke', 'batches', 'secrets'];
// What each role may use (api/tenancy/policy.ts): an invoker runs functions and reads its own calls; a
// developer everything of its namespace but its secrets; an admin (and the operator) all of it.
const INVOKER_VIEWS = ['calls', 'callbacks', 'invoke', 'batches'];
const canSee = (view, role) =>
  !role || role === 'operator' || role === 'admin' ? true : role === 'developer' ? view !== 'secrets' : INVOKER_VIEWS.includes(view);
let who = null; // GET /whoami's answer: {namespace, role, keyId?}; null until known
const REFRESH_MS = 2000;
// Views loaded only while shown (on showing, then every VIEW_REFRESH_MS): each has a #VIEW-hint for errors.
const LOADERS = {
  charts: refreshCharts,
  schedules: refreshSchedules,
  triggers: refreshTriggers,
  callbacks: refreshCallbacks,
  'dead-letters': refreshDeadLetters,
  secrets: refreshSecrets,
};
const VIEW_REFRESH_MS = 5000;
let closeStream = () => {};
let loading = null; // the view being loaded, so that loads do not pile up

function showView() {
  const role = who?.role;
  const want = window.location.hash.slice(1);
  const first = VIEWS.find((v) => canSee(v, role));
  const view = VIEWS.includes(want) && canSee(want, role) ? want : first;
  for (const v of VIEWS) $(`view-${v}`).hidden = v !== view;
  for (const a of document.querySelectorAll('#tabs a')) a.hidden = !canSee(a.dataset.view, role);
  for (const a of document.querySelectorAll('#tabs a')) a.classList.toggle('active', a.dataset.view === view);
  document.body.dataset.view = view;
  void loadView();
}

// Loads the view shown, if it is one that is loaded only while shown.
async function loadView() {
  const view = document.body.dataset.view;
  const load = LOADERS[view];
  if (!load || loading === view) return;
  loading = view;
  const hint = $(`${view}-hint`);
  try {
    await load();
    hint.textContent = '';
    hint.className = 'hint';
  } catch (e) {
    if (e.status !== 401) {
      hint.textContent = `cannot load from the API: ${e.message}`;
      hint.className = 'hint bad';
    }
  } finally {
    loading = null;
  }
}

function banner(text) {
  const b = $('banner');
  b.textContent = text;
  b.hidden = !text;
  if (!text) $('token').classList.remove('needed');
}

function setLive(state) {
  const el = $('live');
  el.textContent = state === 'live' ? 'live' : 'reconnecting…';
  el.className = `live ${state === 'live' ? 'on' : 'off'}`;
}

// Who the token or key acts as, in the header; the views follow its role. Unknown (refused, or an API
// from before namespaces): every view, as before.
async function loadWho() {
  who = await api('/whoami').catch(() => null);
  const el = $('who');
  el.hidden = !who;
  el.textContent = who ? `${who.namespace} · ${who.role}` : '';
  el.title = who ? `acting in namespace ${who.namespace} as ${who.role}${who.keyId ? ` (key ${who.keyId})` : ' (the operator token)'}` : '';
  document.body.dataset.role = who?.role || '';
  // The nodes are shared by every namespace: the operator's to see.
  $('nodes-card').hidden = !!who && who.role !== 'operator';
  showView();
}

// The functions an invoker may name: it cannot list them, so those of the calls it made.
async function invokerNames() {
  const calls = await api('/calls?format=list&limit=100');
  return [...new Set(calls.map((c) => c.funcName))].sort();
}

// Overview data, and the function lists of the other views.
async function refresh() {
  try {
    const role = who?.role;
    const names = role === 'invoker' ? await invokerNames() : await refreshOverview({ nodes: !role || role === 'operator' });
    fillSelect($('invoke-fn'), names);
    fillSelect($('batch-fn'), names);
    fillSelect($('calls-filter'), names, { any: 'all' });
    banner('');
  } catch (e) {
    if (e.status !== 401) banner(`cannot load from the API: ${e.message}`);
  }
}

async function connect() {
  closeStream();
  closeStream = liveCalls(onCallEvent, setLive);
  await loadWho();
  await Promise.all([refresh(), loadCalls().catch(() => {}), refreshBatches().catch(() => {}), loadView()]);
}

function init() {
  $('token').value = token.get();
  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    token.set($('token').value.trim());
    banner('');
    void connect();
  });
  onUnauthorized(() => {
    banner(
      token.get()
        ? 'The API refused this token or key: paste the right one above.'
        : 'This API needs a token or a key: paste it above (it stays in this browser only).',
    );
    $('token').classList.add('needed');
  });
  window.addEventListener('hashchange', showView);
  initCalls();
  initInvoke();
  initBatches();
  initCharts();
  initSecrets();
  showView();
  void connect();
  setInterval(() => {
    if (!document.hidden) void refresh();
  }, REFRESH_MS);
  setInterval(() => {
    if (!document.hidden) void loadView();
  }, VIEW_REFRESH_MS);
}

init();
