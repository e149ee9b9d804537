// The route table: each role reaches what the README says and no more.
import { describe, expect, it } from 'vitest';
import { need } from './policy.js';

describe('route policy', () => {
  it.each([
    ['GET', '/health', 'open'],
    ['POST', '/invokeFunction', 'invoker'],
    ['PUT', '/function/hello/a/b', 'invoker'],
    ['GET', '/ns/team-a/function/hello', 'invoker'],
    ['DELETE', '/namespaces/team-a', 'operator'],
    ['GET', '/call/12', 'invoker'],
    ['GET', '/calls', 'invoker'],
    ['DELETE', '/call/12', 'invoker'],
    ['GET', '/events', 'invoker'],
    ['POST', '/batch/hello', 'invoker'],
    ['GET', '/batch/abc/results', 'invoker'],
    ['GET', '/functions', 'developer'],
    ['POST', '/registerFunction/node/f', 'developer'],
    ['POST', '/registerRuntime', 'developer'],
    ['GET', '/metrics', 'developer'],
    ['GET', '/dead-letters', 'developer'],
    ['POST', '/functions/f/schedules', 'developer'],
    ['POST', '/secrets/db-pass', 'admin'],
    ['GET', '/secrets', 'admin'],
    ['POST', '/namespaces/team-a/keys', 'admin'],
    ['DELETE', '/namespaces/team-a/keys/0123456789abcdef', 'admin'],
    ['GET', '/namespaces/team-a', 'admin'],
    ['POST', '/namespaces', 'operator'],
    ['GET', '/namespaces', 'operator'],
    ['PUT', '/namespaces/team-a/quotas', 'operator'],
    ['GET', '/nodes', 'operator'],
    ['PUT', '/node/n1', 'operator'],
  ])('%s %s needs %s', (method, path, want) => {
    expect(need(method, path)).toBe(want);
  });
});
