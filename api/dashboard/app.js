// The dashboard's entry: views by URL hash, the token field, the live stream, periodic refreshes.
/* global window, setInterval, document */
import { liveCalls, onUnauthorized, token } from './api.js';
import { initBatches, refreshBatches } from './batches.js';
import { refreshCallbacks } from './callbacks.js';
import { initCalls, loadCalls, onCallEvent } from './calls.js';
import { initCharts, refreshCharts } from './charts.js';
import { refreshDeadLetters } from './dead-letters.js';
import { $, fillSelect } from './dom.js';
import { initInvoke } from './invoke.js';
import { refreshOverview } from './overview.js';
import { refreshSchedules } from './schedules.js';

const VIEWS = ['overview', 'calls', 'charts', 'schedules', 'callbacks', 'dead-letters', 'invoke', 'batches'];
const REFRESH_MS = 2000;
// Views loaded only while shown (on showing, then every VIEW_REFRESH_MS): each has a #VIEW-hint for errors.
const LOADERS = { charts: refreshCharts, schedules: refreshSchedules, callbacks: refreshCallbacks, 'dead-letters': refreshDeadLetters };
const VIEW_REFRESH_MS = 5000;
let closeStream = () => {};
let loading = null; // the view being loaded, so that loads do not pile up

function showView() {
  const want = window.location.hash.slice(1);
  const view = VIEWS.includes(want) ? want : 'overview';
  for (const v of VIEWS) $(`view-${v}`).hidden = v !== view;
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

// Overview data, and the function lists of the other views.
async function refresh() {
  try {
    const names = await refreshOverview();
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
        ? 'The API refused this token: paste the right one above.'
        : 'This API needs a token: paste it above (it stays in this browser only).',
    );
    $('token').classList.add('needed');
  });
  window.addEventListener('hashchange', showView);
  initCalls();
  initInvoke();
  initBatches();
  initCharts();
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
