// How the store reads a --store URL that lists several hosts (libpq's form), and which errors mean its
// host is lost. No server needed; db/pg-failover.test.ts runs the connection itself against real ones.
import { describe, expect, it } from 'vitest';
import { isFailover, parsePgUrl } from './pg-connect.js';

describe('parsePgUrl', () => {
  it('splits a multi-host URL into one URL per host, each with the user, password, database and parameters', () => {
    const t = parsePgUrl('postgres://zfaas:p%40ss@db1:5432,db2:6432/zfaas?target_session_attrs=read-write&sslmode=require');
    expect(t.attrs).toBe('read-write');
    expect(t.hosts).toEqual(['db1:5432', 'db2:6432']);
    expect(t.urls).toEqual([
      'postgres://zfaas:p%40ss@db1:5432/zfaas?sslmode=require',
      'postgres://zfaas:p%40ss@db2:6432/zfaas?sslmode=require',
    ]);
  });

  it('keeps a single-host URL as it is, taking any host (libpq default)', () => {
    const t = parsePgUrl('postgresql://u@127.0.0.1:5432/db');
    expect(t).toEqual({ urls: ['postgresql://u@127.0.0.1:5432/db'], hosts: ['127.0.0.1:5432'], attrs: 'any' });
  });

  it('takes IPv6 hosts, hosts without a port and no user', () => {
    const t = parsePgUrl('postgres://[::1]:5433,pg2/db?target_session_attrs=primary');
    expect(t.urls).toEqual(['postgres://[::1]:5433/db', 'postgres://pg2/db']);
    expect(t.attrs).toBe('primary');
  });

  it('refuses a target a store cannot write to, and an empty host', () => {
    expect(() => parsePgUrl('postgres://h1,h2/db?target_session_attrs=standby')).toThrow(/not for a store that writes/);
    expect(() => parsePgUrl('postgres://h1,h2/db?target_session_attrs=prefer-standby')).toThrow(/not for a store that writes/);
    expect(() => parsePgUrl('postgres://h1,,h2/db')).toThrow(/empty host/);
  });
});

describe('isFailover', () => {
  it('is true for a host gone, shutting down, starting, or turned standby', () => {
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', '57P01', '57P02', '57P03', '08006', '25006'])
      expect(isFailover(Object.assign(new Error('x'), { code })), code).toBe(true);
    expect(isFailover(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isFailover(new Error('Query read timeout'))).toBe(true); // no answer within query_timeout
  });

  it('is false for what a write itself did wrong or another writer caused', () => {
    for (const code of ['23505', '40P01', '40001', '42P01', '22P02'])
      expect(isFailover(Object.assign(new Error('x'), { code })), code).toBe(false);
    expect(isFailover(new Error('runtime py is used by function f'))).toBe(false);
  });
});
