// One-use, short-lived tickets for the event stream. A browser's EventSource cannot send a header, and a
// token or key in a URL ends up in histories, proxies and logs: the page asks POST /events/ticket (with
// its header) for a ticket and opens GET /events?ticket=... with it. A ticket stands for the scope it was
// made in, is taken by the first request that shows it and is worth nothing after TTL_MS.
import { randomBytes } from 'node:crypto';
import type { Scope } from './scope.js';

export const TICKET_TTL_MS = 30_000;
const MAX_HELD = 10_000;

export interface Ticket {
  ticket: string;
  expiresInS: number;
}

interface Held {
  scope: Scope;
  issuedAt: number;
}

export class Tickets {
  private readonly held = new Map<string, Held>();

  issue(scope: Scope, now = Date.now()): Ticket {
    for (const [t, h] of this.held) {
      if (now - h.issuedAt < TICKET_TTL_MS && this.held.size < MAX_HELD) break; // oldest first: the rest are newer
      this.held.delete(t);
    }
    const ticket = randomBytes(24).toString('base64url');
    this.held.set(ticket, { scope, issuedAt: now });
    return { ticket, expiresInS: TICKET_TTL_MS / 1000 };
  }

  // The ticket's scope and when it was made, once: null when unknown, used or expired.
  take(ticket: string, now = Date.now()): Held | null {
    const h = this.held.get(ticket);
    if (!h) return null;
    this.held.delete(ticket);
    return now - h.issuedAt < TICKET_TTL_MS ? h : null;
  }
}
