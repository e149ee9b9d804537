// Who a request acts as: the operator (the admin token, or no token on a loopback-only API) or a key of
// one namespace with a role. Handlers qualify the names they are sent with it, keep to what it owns (what
// it does not own is "not found", so that names never leak across namespaces) and show names bare.
import type { Response } from 'express';
import { DEFAULT_NAMESPACE, namespaceOf, NS_SEP, qualify } from '../../common/namespace.js';
import type { Role } from '../../common/model.js';
import { HttpError } from '../http.js';

export type Actor = Role | 'operator';
const RANK: Record<Actor, number> = { invoker: 1, developer: 2, admin: 3, operator: 4 };

export const atLeast = (actor: Actor, need: Actor): boolean => RANK[actor] >= RANK[need];

// The fields that hold a function's or runtime's name in what the API answers.
const NAME_FIELDS = new Set(['funcName', 'functionName', 'runtimeName', 'function', 'runtime']);

export class Scope {
  constructor(
    readonly namespace: string,
    readonly actor: Actor,
    readonly keyId?: string, // the key, for everyone but the operator
  ) {}

  get operator(): boolean {
    return this.actor === 'operator';
  }

  // A name as the services know it.
  q(name: string): string {
    return qualify(this.namespace, name);
  }

  owns(qualified: string): boolean {
    return namespaceOf(qualified) === this.namespace;
  }

  // A call this scope may see: its namespace's, and for an invoker only those its key made.
  sees(call: { funcName: string; by?: string }): boolean {
    return this.owns(call.funcName) && (this.actor !== 'invoker' || call.by === this.keyId);
  }

  // Refuses (403) an action beyond the role; what the role may not even see is answered 404 elsewhere.
  need(actor: Actor, what: string): void {
    if (!atLeast(this.actor, actor)) throw new HttpError(403, `${what} needs the ${actor} role; this key is ${this.actor}`);
  }

  // What is answered, with this namespace's names shown bare (a deep copy only when there is a prefix).
  show<T>(value: T): T {
    if (this.namespace === DEFAULT_NAMESPACE) return value;
    const prefix = `${this.namespace}${NS_SEP}`;
    const walk = (v: unknown, key?: string): unknown => {
      if (typeof v === 'string') return key && NAME_FIELDS.has(key) && v.startsWith(prefix) ? v.slice(prefix.length) : v;
      if (Array.isArray(v)) return v.map((x) => walk(x, key));
      if (v && typeof v === 'object') {
        const out: Record<string, unknown> = {};
        for (const [k, x] of Object.entries(v)) out[k] = k === 'params' || k === 'result' ? x : walk(x, k);
        return out;
      }
      return v;
    };
    return walk(value) as T;
  }
}

export const OPERATOR_DEFAULT = new Scope(DEFAULT_NAMESPACE, 'operator');

// The request's scope, as the identity middleware set it (routers used alone, in tests: the operator).
export const scopeOf = (res: Response): Scope => (res.locals.scope as Scope | undefined) ?? OPERATOR_DEFAULT;
