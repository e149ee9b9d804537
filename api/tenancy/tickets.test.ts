// Event-stream tickets: taken once, worth nothing after their time, and unguessably many.
import { describe, expect, it } from 'vitest';
import { Scope } from './scope.js';
import { TICKET_TTL_MS, Tickets } from './tickets.js';

describe('Tickets', () => {
  const scope = new Scope('team-a', 'invoker', 'k1');

  it('are taken once', () => {
    const t = new Tickets();
    const { ticket, expiresInS } = t.issue(scope, 1000);
    expect(expiresInS).toBe(TICKET_TTL_MS / 1000);
    expect(ticket).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(t.take(ticket, 1001)?.scope).toBe(scope);
    expect(t.take(ticket, 1002)).toBeNull();
  });

  it('are worth nothing once their time is up', () => {
    const t = new Tickets();
    const { ticket } = t.issue(scope, 1000);
    expect(t.take(ticket, 1000 + TICKET_TTL_MS)).toBeNull();
    expect(t.take('made-up', 1000)).toBeNull();
  });

  it('forget expired ones as new ones are made', () => {
    const t = new Tickets();
    const old = t.issue(scope, 0).ticket;
    const fresh = t.issue(scope, TICKET_TTL_MS + 1).ticket;
    expect(t.take(old, 0)).toBeNull(); // dropped when the fresh one was made
    expect(t.take(fresh, TICKET_TTL_MS + 2)?.scope).toBe(scope);
  });
});
