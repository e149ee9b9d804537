// A function version's build: its runtime's `dependencies` step, run once at deploy on one node, whose
// result (the built tree, packed) is kept in the DB service by digest and fetched by every node that runs
// the version, like its source archive. The rules are here, pure: how a build's state may change, and what
// a call of a version does while it builds, once it is built, or after its build failed.
import { z } from 'zod';
import { bareName } from './namespace.js';

export const BUILD_STATES = ['building', 'ready', 'failed'] as const;
// The end of the step's output a build keeps (npm's, pip's own words), enough for the error that matters.
export const BUILD_LOG_MAX = 8000;
export const BUILD_ERROR_MAX = 4000;

const digest = z.string().regex(/^[a-f0-9]{64}$/);

export const BuildSchema = z.object({
  state: z.enum(BUILD_STATES),
  startedAt: z.string(),
  finishedAt: z.string().optional(),
  node: z.string().max(256).optional(), // the node that ran it
  // ready: the built tree as a packed archive in the DB service; unset, the step had nothing to do and the
  // source archive is the tree.
  digest: digest.optional(),
  size: z.number().int().min(0).optional(), // bytes of that archive
  error: z.string().max(BUILD_ERROR_MAX).optional(), // failed: what failed, with the end of the step's output
  log: z.string().max(BUILD_LOG_MAX).optional(), // the step's output, its end
});
export type Build = z.infer<typeof BuildSchema>;

// What a node reports at the end of a build.
export const BuildEndSchema = BuildSchema.extend({ state: z.enum(['ready', 'failed']), finishedAt: z.string() });
export type BuildEnd = z.infer<typeof BuildEndSchema>;

export type BuildVerdict = { changed: true; next: Build } | { changed: false; why: string };

// The build as it ends: only a build still running takes an end, and the first end wins (a build sent to
// a second node after its first one was lost may end twice; either result is the same step's).
export function endBuild(current: Build | undefined, end: BuildEnd): BuildVerdict {
  if (!current) return { changed: false, why: 'the version has no build' };
  if (current.state !== 'building') return { changed: false, why: `the build has ended already (${current.state})` };
  if (end.state === 'ready' && end.error) return { changed: false, why: 'a ready build carries no error' };
  if (end.state === 'failed' && !end.error) return { changed: false, why: 'a failed build says what failed' };
  return { changed: true, next: { ...end, startedAt: current.startedAt } };
}

// A new version's build: one whose runtime has a dependencies step starts building; others need none.
export function newBuild(dependencies: string, now: Date): Build | undefined {
  return dependencies.trim() ? { state: 'building', startedAt: now.toISOString() } : undefined;
}

// What a call of a version does: run (built, or nothing to build), wait for the build, or end at once in
// ERROR with what failed (the function's fault: its dependencies cannot be installed as it stands).
export type CallGate = { kind: 'run' } | { kind: 'wait' } | { kind: 'fail'; error: string };

export function callGate(fn: { functionName: string; version: number; build?: Build }): CallGate {
  const b = fn.build;
  if (!b || b.state === 'ready') return { kind: 'run' };
  if (b.state === 'building') return { kind: 'wait' };
  return { kind: 'fail', error: buildFailure(fn) };
}

// The message of a call of a version whose build failed.
export function buildFailure(fn: { functionName: string; version: number; build?: Build }): string {
  const b = fn.build;
  return `version ${fn.version} of ${bareName(fn.functionName)} cannot run: its build failed at deploy: ${b?.error ?? 'unknown error'}`;
}

// The end of a log, at most `max` characters, cut at a line start where one is near.
export function logTail(log: string, max = BUILD_LOG_MAX): string {
  const t = log.trimEnd();
  if (t.length <= max) return t;
  const cut = t.slice(-max);
  const nl = cut.indexOf('\n');
  return nl >= 0 && nl < 200 ? cut.slice(nl + 1) : cut;
}
