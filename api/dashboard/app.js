// The dashboard's entry: views by URL hash, the token field, the live stream, periodic refreshes.
/* global window, setInterval, document */
import { liveCalls, onUnauthorized, token } from './api.js';
import { initBatches, refreshBatches } from './batches.js';
import { initCalls, loadCalls, onCallEvent } from './calls.js';
import { $, fillSelect } from './dom.js';
import { initInvoke } from './invoke.js';
import { refreshOverview } from './overview.js';

const VIEWS = ['overview', 'calls', 'invoke', 'batches'];
const REFRESH_MS = 2000;
let closeStream = () => {};

function showView() {
  const want = window.location.hash.slice(1);
  const view = VIEWS.includes(want) ? want : 'overview';
  for (const v of VIEWS) $(`view-${v}`).hidden = v !== view;
  for (const a of document.querySelectorAll('#tabs a')) a.classList.toggle('active', a.dataset.view === view);
  document.body.dataset.view = view;
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
  await Promise.all([refresh(), loadCalls().catch(() => {}), refreshBatches().catch(() => {})]);
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
  showView();
  void connect();
  setInterval(() => {
    if (!document.hidden) void refresh();
  }, REFRESH_MS);
}

init();
