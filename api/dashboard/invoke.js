// Invoke: a function and JSON params in, the finished call out (POST /invokeFunction with wait).
/* global performance */
import { api } from './api.js';
import { $, badge, h, ms, pretty, setChildren } from './dom.js';

function parseParams(text) {
  if (text.trim() === '') return {};
  return JSON.parse(text);
}

function show(c) {
  const box = $('invoke-result');
  box.hidden = false;
  const out =
    c.status === 'DONE'
      ? [h('h3', {}, 'result'), h('pre', { id: 'invoke-output' }, pretty(c.result))]
      : [
          h('h3', {}, c.error ? 'error' : 'not finished'),
          h('pre', { id: 'invoke-output', className: 'bad' }, c.error || `still ${c.status}: see call ${c.callNum}`),
        ];
  setChildren(
    box,
    h('div', { className: 'card-head' }, h('h2', {}, `Call ${c.callNum}`), badge(c.status)),
    h(
      'p',
      { className: 'hint' },
      `${c.version ? `${c.funcName}@${c.version}` : c.funcName} on ${c.node || '?'} · run time ${ms(c.durationMs) || '—'} · attempts ${c.attempts}`,
    ),
    out,
    c.logs ? [h('h3', {}, 'logs'), h('pre', {}, c.logs)] : null,
  );
}

export function initInvoke() {
  $('invoke-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const hint = $('invoke-hint');
    let params;
    try {
      params = parseParams($('invoke-params').value);
    } catch (e) {
      hint.textContent = `params are not valid JSON: ${e.message}`;
      hint.className = 'hint bad';
      return;
    }
    const fn = $('invoke-fn').value;
    const go = $('invoke-go');
    go.disabled = true;
    hint.textContent = `running ${fn}…`;
    hint.className = 'hint';
    const t0 = performance.now();
    try {
      const call = await api('/invokeFunction', { method: 'POST', json: { funcName: fn, params, wait: true } });
      hint.textContent = `answered in ${ms(performance.now() - t0)}`;
      show(call);
    } catch (e) {
      hint.textContent = e.message;
      hint.className = 'hint bad';
    } finally {
      go.disabled = false;
    }
  });
}
