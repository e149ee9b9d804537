// The Go loader's copy of the loader protocol's constants (runtimes/go/zfaasrt/protocol.go) against their
// one source, protocol/loader.ts: a change there fails here until the Go loader follows it.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LINE_ENV, LOADER_PROTOCOL, LOG_LIMIT, OLDEST_LOADER_PROTOCOL, PATTERNS, RESULT_LIMIT } from '../../protocol/loader.js';

// A Go interpreted string literal's value (the escapes protocol.go uses are JSON's).
const goString = (src: string, name: string): string => {
  const m = new RegExp(`\\b${name}\\s+=\\s+(?:regexp\\.MustCompile\\()?"((?:[^"\\\\]|\\\\.)*)"`).exec(src);
  if (!m) throw new Error(`protocol.go has no ${name}`);
  return JSON.parse(`"${m[1]}"`) as string;
};
const goInt = (src: string, name: string): number => Number(new RegExp(`\\b${name}\\s+=\\s+(\\d+)\\n`).exec(src)?.[1]);

describe('the Go loader speaks the protocol of protocol/loader.ts', () => {
  it('has its version, limits, socket variable and patterns', async () => {
    const src = await readFile(join(import.meta.dirname, 'zfaasrt', 'protocol.go'), 'utf8');
    // a version this node speaks (one call at a time: version 2)
    expect(goInt(src, 'Version')).toBeGreaterThanOrEqual(OLDEST_LOADER_PROTOCOL);
    expect(goInt(src, 'Version')).toBeLessThanOrEqual(LOADER_PROTOCOL);
    expect(goInt(src, 'ResultLimit')).toBe(RESULT_LIMIT);
    expect(goInt(src, 'LogLimit')).toBe(LOG_LIMIT);
    expect(goString(src, 'LineEnv')).toBe(LINE_ENV);
    expect(goString(src, 'envName')).toBe(`^(?:${PATTERNS.envName})$`);
    expect(goString(src, 'headerToken')).toBe(`^(?:${PATTERNS.headerToken})$`);
    expect(goString(src, 'secretName')).toBe(`^(?:${PATTERNS.secretName})$`);
    expect(goString(src, 'base64Re')).toBe(`^(?:${PATTERNS.base64})$`);
  });
});
