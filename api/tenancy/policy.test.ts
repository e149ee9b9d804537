// The rule each route of the API declares where it is registered, read from the app the API really builds:
// each role reaches what the README's Teams section says and no more, and every route declares one.
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DbError } from '../../db/client.js';
import { declaredRoutes, type Declared } from '../routes.js';
import { ApiServer } from '../server.js';
import { permits, roleFor } from './policy.js';

let server: ApiServer;
let routes: Declared[];

beforeAll(() => {
  // The app as `zfaas api` builds it, over a DB that answers nothing (no request is made here).
  server = new ApiServer({
    port: 0,
    host: '127.0.0.1',
    db: {
      local: () => Promise.reject(new DbError('closed', 'CLOSED')),
    },
    brokerBind: 'tcp://127.0.0.1:1',
    log: pino({ level: 'silent' }),
  });
  routes = declaredRoutes(server.app());
});
afterAll(() => server.stop());

describe('the rules the routes declare', () => {
  const expected: Record<string, string> = {
    'GET /': 'open',
    'GET /index.html': 'open',
    'GET /ui/vendor/:file': 'open',
    'GET /ui/:file': 'open',
    'GET /health': 'open',
    'ALL /^(?:\\/ns\\/([^/]+))?\\/function\\/([^/]+)(\\/.*)?$/': 'public',
    'POST /invokeFunction': 'invoker',
    'POST /batch/:target': 'invoker',
    'GET /batch/:id': 'invoker',
    'GET /batch/:id/results': 'invoker',
    'GET /calls': 'invoker',
    'GET /call/:callNum': 'invoker',
    'DELETE /call/:callNum': 'invoker',
    'GET /events': 'invoker+ticket',
    'POST /events/ticket': 'invoker',
    'GET /whoami': 'invoker',
    'GET /openapi.json': 'invoker',
    'GET /batches': 'developer',
    'POST /registerRuntime': 'developer',
    'GET /runtimes': 'developer',
    'GET /runtime/:name': 'developer',
    'DELETE /runtime/:name': 'developer',
    'POST /registerFunction/:runtime/:funcName': 'developer',
    'POST /registerImageFunction/:funcName': 'developer',
    'GET /functions': 'developer',
    'GET /functions/:name': 'developer',
    'POST /functions/:name/rollback': 'developer',
    'DELETE /functions/:name': 'developer',
    'DELETE /functions/:name/versions/:version': 'developer',
    'POST /functions/:name/schedules': 'developer',
    'GET /functions/:name/schedules': 'developer',
    'DELETE /functions/:name/schedules/:id': 'developer',
    'POST /functions/:name/triggers': 'developer',
    'GET /functions/:name/triggers': 'developer',
    'GET /functions/:name/triggers/:id': 'developer',
    'DELETE /functions/:name/triggers/:id': 'developer',
    'POST /functions/:name/triggers/:id/pause': 'developer',
    'POST /functions/:name/triggers/:id/resume': 'developer',
    'GET /dead-letters': 'developer',
    'POST /dead-letters/:callNum/replay': 'developer',
    'DELETE /dead-letters/:callNum': 'developer',
    'GET /metrics': 'developer',
    'GET /metrics/functions': 'developer',
    'GET /metrics/functions/timeline': 'developer',
    'GET /namespaces/:ns': 'admin',
    'POST /namespaces/:ns/keys': 'admin',
    'GET /namespaces/:ns/keys': 'admin',
    'POST /namespaces/:ns/keys/:id/rotate': 'admin',
    'DELETE /namespaces/:ns/keys/:id': 'admin',
    'POST /secrets': 'admin',
    'PUT /secrets/:name': 'admin',
    'GET /secrets': 'admin',
    'DELETE /secrets/:name': 'admin',
    'POST /namespaces': 'operator',
    'GET /namespaces': 'operator',
    'DELETE /namespaces/:ns': 'operator',
    'PUT /namespaces/:ns/quotas': 'operator',
    'GET /nodes': 'operator',
    'PUT /node/:id': 'operator',
  };

  it('are declared by every route, and are the README’s', () => {
    const got = Object.fromEntries(
      routes.map((d) => [`${d.method} ${String(d.path)}`, d.rule ? `${d.rule.need}${d.rule.ticket ? '+ticket' : ''}` : 'NONE']),
    );
    expect(got).toEqual(expected);
  });
});

describe('what a role permits', () => {
  it.each([
    ['invoker', 'public', true],
    ['invoker', 'invoker', true],
    ['invoker', 'developer', false],
    ['developer', 'admin', false],
    ['admin', 'admin', true],
    ['admin', 'operator', false],
    ['operator', 'operator', true],
    ['invoker', 'open', true],
  ] as const)('%s for %s: %s', (actor, need, ok) => {
    expect(permits(actor, need)).toBe(ok);
  });

  it('asks an open route for no role and a web path for an invoker', () => {
    expect(roleFor('open')).toBeNull();
    expect(roleFor('public')).toBe('invoker');
  });
});
