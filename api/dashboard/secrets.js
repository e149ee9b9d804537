// Secrets (admin role): the namespace's secrets by name, version and size (GET /secrets never answers a
// value, and this page never shows one), a form that creates one (POST /secrets) or replaces a value
// (PUT /secrets/NAME), and a Delete button (DELETE /secrets/NAME) that asks first.
/* global window */
import { api } from './api.js';
import { $, ago, fillTable, h } from './dom.js';

function done(text, bad = false) {
  const el = $('secrets-done');
  el.textContent = text;
  el.className = bad ? 'hint bad' : 'hint';
  el.hidden = !text;
}

const size = (n) => (n < 1024 ? `${n} B` : `${(n / 1024).toFixed(1)} kB`);

async function remove(s) {
  if (!window.confirm(`Delete secret ${s.name}? Functions that name it no longer get it.`)) return;
  try {
    await api(`/secrets/${encodeURIComponent(s.name)}`, { method: 'DELETE' });
    done(`secret ${s.name} deleted`);
  } catch (e) {
    done(`secret ${s.name}: ${e.message}`, true);
  }
  await refreshSecrets().catch(() => {});
}

function replace(s) {
  $('secret-name').value = s.name;
  $('secret-value').value = '';
  $('secret-value').focus();
  done(`type the new value of ${s.name}, then Replace`);
}

const row = (s) =>
  h(
    'tr',
    { dataset: { secret: s.name } },
    h('td', { className: 'strong mono' }, s.name),
    h('td', {}, `v${s.version}`),
    h('td', {}, size(s.bytes)),
    h('td', {}, ago(s.createdAt)),
    h('td', {}, ago(s.updatedAt)),
    h(
      'td',
      {},
      h(
        'span',
        { className: 'actions' },
        h('button', { type: 'button', className: 'small', dataset: { action: 'replace' }, onclick: () => replace(s) }, 'Replace…'),
        h(
          'button',
          { type: 'button', className: 'small secondary', dataset: { action: 'delete' }, onclick: () => void remove(s) },
          'Delete',
        ),
      ),
    ),
  );

export async function refreshSecrets() {
  const list = await api('/secrets');
  fillTable(
    $('secrets-table'),
    ['secret', 'version', 'size', 'created', 'updated', ''],
    list.map(row),
    'no secret: create one below, or printf %s VALUE | zfaas secret create NAME',
  );
}

async function save(how) {
  const name = $('secret-name').value.trim();
  const value = $('secret-value').value;
  if (!name) return done('give the secret a name', true);
  try {
    const s =
      how === 'create'
        ? await api('/secrets', { method: 'POST', json: { name, value } })
        : await api(`/secrets/${encodeURIComponent(name)}`, { method: 'PUT', json: { value } });
    // The value leaves the page as soon as it is stored.
    $('secret-value').value = '';
    done(`secret ${s.name} ${how === 'create' ? 'created' : 'replaced'} (version ${s.version}, ${size(s.bytes)})`);
  } catch (e) {
    done(`secret ${name}: ${e.message}`, true);
  }
  await refreshSecrets().catch(() => {});
}

export function initSecrets() {
  $('secret-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    void save('create');
  });
  $('secret-replace').addEventListener('click', () => void save('replace'));
}
