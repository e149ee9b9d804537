// The Java loader's copy of the loader protocol's constants (runtimes/java/Protocol.java) against their one
// source, protocol/loader.ts: a change there fails here until the Java loader follows it.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LINE_ENV, LOADER_PROTOCOL, LOG_LIMIT, OLDEST_LOADER_PROTOCOL, PATTERNS, RESULT_LIMIT } from '../../protocol/loader.js';

// A Java string literal's value (the escapes Protocol.java uses).
const javaString = (src: string, name: string): string => {
  const m = new RegExp(`static final (?:String|Pattern) ${name} = (?:Pattern\\.compile\\()?"((?:[^"\\\\]|\\\\.)*)"`).exec(src);
  if (!m) throw new Error(`Protocol.java has no ${name}`);
  return JSON.parse(`"${m[1]}"`) as string;
};
const javaInt = (src: string, name: string): number => Number(new RegExp(`static final int ${name} = (\\d+);`).exec(src)?.[1]);

describe('the Java loader speaks the protocol of protocol/loader.ts', () => {
  it('has its version, limits, socket variable and patterns', async () => {
    const src = await readFile(join(import.meta.dirname, 'Protocol.java'), 'utf8');
    // A version the node speaks (the Java loader does not stream: it stays at 2).
    // a version this node speaks; before CONCURRENT_PROTOCOL it gets one call at a time
    expect(javaInt(src, 'VERSION')).toBeGreaterThanOrEqual(OLDEST_LOADER_PROTOCOL);
    expect(javaInt(src, 'VERSION')).toBeLessThanOrEqual(LOADER_PROTOCOL);
    expect(javaInt(src, 'RESULT_LIMIT')).toBe(RESULT_LIMIT);
    expect(javaInt(src, 'LOG_LIMIT')).toBe(LOG_LIMIT);
    expect(javaString(src, 'LINE_ENV')).toBe(LINE_ENV);
    expect(javaString(src, 'ENV_NAME')).toBe(`^(?:${PATTERNS.envName})$`);
    expect(javaString(src, 'HEADER_TOKEN')).toBe(`^(?:${PATTERNS.headerToken})$`);
    expect(javaString(src, 'SECRET_NAME')).toBe(`^(?:${PATTERNS.secretName})$`);
    expect(javaString(src, 'BASE64')).toBe(`^(?:${PATTERNS.base64})$`);
  });
});
