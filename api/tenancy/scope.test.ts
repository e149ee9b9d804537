// What a scope qualifies, owns and shows: the default namespace is the names as they always were; another
// namespace's names are prefixed inside and bare in every answer, its params and results left alone.
import { describe, expect, it } from 'vitest';
import { Scope } from './scope.js';

describe('Scope', () => {
  const team = new Scope('team-a', 'invoker', 'k1');
  const op = new Scope('default', 'operator');

  it('qualifies and owns names of its namespace only', () => {
    expect(team.q('hello')).toBe('team-a~hello');
    expect(op.q('hello')).toBe('hello');
    expect(team.owns('team-a~hello')).toBe(true);
    expect(team.owns('team-b~hello')).toBe(false);
    expect(team.owns('hello')).toBe(false);
    expect(op.owns('hello')).toBe(true);
    expect(op.owns('team-a~hello')).toBe(false);
  });

  it('lets an invoker see only the calls its key made', () => {
    expect(team.sees({ funcName: 'team-a~hello', by: 'k1' })).toBe(true);
    expect(team.sees({ funcName: 'team-a~hello', by: 'k2' })).toBe(false);
    expect(team.sees({ funcName: 'team-a~hello' })).toBe(false);
    expect(new Scope('team-a', 'developer', 'k2').sees({ funcName: 'team-a~hello', by: 'k1' })).toBe(true);
  });

  it('shows its names bare, deep in an answer, and leaves params and results as they are', () => {
    const shown = team.show({
      callNum: 1,
      funcName: 'team-a~hello',
      params: { funcName: 'team-a~x' },
      result: 'team-a~y',
      list: [{ functionName: 'team-a~f', runtimeName: 'team-a~rt' }, { runtimeName: 'node' }],
    });
    expect(shown).toEqual({
      callNum: 1,
      funcName: 'hello',
      params: { funcName: 'team-a~x' },
      result: 'team-a~y',
      list: [{ functionName: 'f', runtimeName: 'rt' }, { runtimeName: 'node' }],
    });
    const same = { funcName: 'hello' };
    expect(op.show(same)).toBe(same); // nothing to do in the default namespace
  });
});
