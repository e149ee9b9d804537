// The DB protocol's schemas as the in-process DB service relies on them: the call path's own writes
// (TRUSTED_LOCAL), taken unparsed from this process's typed code, must have schemas that fill in nothing,
// else the socket and the in-process path would store different records.
import { describe, expect, it } from 'vitest';
import { z, type ZodTypeAny } from 'zod';
import { TRUSTED_LOCAL } from '../db/server.js';
import { DB_MESSAGES } from './db.js';

// Where a schema changes what it parses (a default, a transform, a preprocess, a catch, a pipe): the paths.
function changers(schema: ZodTypeAny, path = '', seen = new Set<ZodTypeAny>()): string[] {
  if (seen.has(schema)) return [];
  seen.add(schema);
  const walk = (s: ZodTypeAny, p: string) => changers(s, p, seen);
  if (schema instanceof z.ZodDefault || schema instanceof z.ZodEffects || schema instanceof z.ZodCatch || schema instanceof z.ZodPipeline)
    return [path || '(root)'];
  if (schema instanceof z.ZodObject)
    return Object.entries(schema.shape as Record<string, ZodTypeAny>).flatMap(([k, v]) => walk(v, `${path}.${k}`));
  if (schema instanceof z.ZodOptional || schema instanceof z.ZodNullable) return walk(schema.unwrap() as ZodTypeAny, path);
  if (schema instanceof z.ZodArray) return walk(schema.element as ZodTypeAny, `${path}[]`);
  if (schema instanceof z.ZodUnion || schema instanceof z.ZodDiscriminatedUnion)
    return (schema.options as ZodTypeAny[]).flatMap((o, i) => walk(o, `${path}|${i}`));
  if (schema instanceof z.ZodRecord) return walk(schema.valueSchema as ZodTypeAny, `${path}{}`);
  if (schema instanceof z.ZodIntersection) return [...walk(schema._def.left, path), ...walk(schema._def.right, path)];
  if (schema instanceof z.ZodTuple) return (schema.items as ZodTypeAny[]).flatMap((s, i) => walk(s, `${path}[${i}]`));
  if (schema instanceof z.ZodLazy) return walk(schema.schema as ZodTypeAny, path);
  return [];
}

describe('the call path`s in-process writes', () => {
  it('have schemas that fill in and transform nothing', () => {
    expect([...TRUSTED_LOCAL].sort()).toEqual(['callIntent', 'createCall']);
    for (const t of TRUSTED_LOCAL) expect(changers(DB_MESSAGES[t].content), t).toEqual([]);
  });

  it('are told apart from a schema that does fill in (the check can fail)', () => {
    expect(changers(DB_MESSAGES.createNamespace.content)).toEqual(['.quotas']);
    expect(changers(z.object({ a: z.array(z.string().transform((s) => s.trim())).optional() }))).toEqual(['.a[]']);
  });
});
