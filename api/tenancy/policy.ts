// What the role a route needs means. Each route declares its rule where it is registered (api/routes.ts,
// route()); a role includes the ones below it (invoker < developer < admin < operator). `open`: anyone,
// credentials not even read (the health check, the dashboard's files, which hold no data). `public`: a
// function's web path, where a caller without credentials reaches the handler, which answers for a public
// function only (a caller with credentials needs the invoker role). What matches no route needs the
// operator. The handlers then keep every key to its own namespace (what it does not own answers 404) and
// an invoker to its own calls.
import { atLeast, type Actor } from './scope.js';

export type Need = 'open' | 'public' | Actor;

export interface Rule {
  need: Need;
  // The credential may come as a one-use ticket in the query (?ticket=, from POST /events/ticket): for a
  // browser's EventSource, which cannot send a header; a ticket in a URL is worth nothing once used.
  ticket?: boolean;
}

// Anything that is not a route: a path in another case, with a trailing or doubled slash, percent-encoded
// letters or "..", or a method the route does not take.
export const UNMATCHED: Rule = { need: 'operator' };

// The role a caller with credentials needs for a rule (an open rule needs none).
export const roleFor = (need: Need): Actor | null => (need === 'open' ? null : need === 'public' ? 'invoker' : need);

export const permits = (actor: Actor, need: Need): boolean => {
  const role = roleFor(need);
  return role === null || atLeast(actor, role);
};
