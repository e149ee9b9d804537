// Which role each route needs: one table, read top to bottom, the first match decides. A role includes
// the ones below it (invoker < developer < admin < operator). The handlers then keep every key to its
// own namespace (what it does not own answers 404) and an invoker to its own calls.
import type { Actor } from './scope.js';

export type Need = Actor | 'open';

const RULES: ReadonlyArray<readonly [method: string, path: RegExp, need: Need]> = [
  ['GET', /^\/health$/, 'open'],
  ['GET', /^\/whoami$/, 'invoker'],
  // Namespaces are the operator's; a namespace's admin manages its keys and reads its own record.
  ['GET', /^\/namespaces\/[^/]+$/, 'admin'],
  ['*', /^\/namespaces\/[^/]+\/keys(\/.*)?$/, 'admin'],
  ['*', /^\/namespaces(\/.*)?$/, 'operator'],
  ['*', /^\/secrets(\/.*)?$/, 'admin'],
  // The nodes are shared by every namespace: what runs where is the operator's to see.
  ['*', /^\/nodes?(\/.*)?$/, 'operator'],
  ['POST', /^\/invokeFunction$/, 'invoker'],
  ['*', /^(\/ns\/[^/]+)?\/function\//, 'invoker'], // a public function's web path also answers anonymous callers
  ['POST', /^\/batch\/[^/]+$/, 'invoker'],
  ['GET', /^\/batch\/[^/]+(\/results)?$/, 'invoker'],
  ['GET', /^\/calls?(\/\d+)?$/, 'invoker'],
  ['DELETE', /^\/call\/[^/]+$/, 'invoker'],
  ['GET', /^\/events$/, 'invoker'],
  ['GET', /^\/openapi\.json$/, 'invoker'],
  ['*', /^/, 'developer'],
];

export function need(method: string, path: string): Need {
  for (const [m, re, n] of RULES) if ((m === '*' || m === method) && re.test(path)) return n;
  return 'operator';
}
