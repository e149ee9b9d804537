// The human forms of memory and timeout: every accepted spelling gives the stored number, and every
// refusal says what was expected and quotes what came.
import { describe, expect, it } from 'vitest';
import { MEMORY_EXPECTED, TIMEOUT_EXPECTED, quote, readMemory, readTimeout } from './units.js';

const value = (r: ReturnType<typeof readMemory>): number | string => (r.ok ? r.value : r.error);

describe('readMemory', () => {
  it('reads 128 MiB however it is written', () => {
    for (const v of ['128', '128m', '128M', '128Mi', '128MiB', '128MB', '128mb', '128mi', ' 128 MiB ', '131072k', '131072KiB', 128])
      expect(value(readMemory(v)), String(v)).toBe(128);
  });

  it('reads gigabytes as 1024 MiB each, fractions when they come to whole MiB', () => {
    for (const v of ['1g', '1Gi', '1GB', '1G', '1GiB', '1gb']) expect(value(readMemory(v)), v).toBe(1024);
    expect(value(readMemory('1.5g'))).toBe(1536);
    expect(value(readMemory('.25Gi'))).toBe(256);
    expect(value(readMemory('8g'))).toBe(8192);
    expect(value(readMemory('16'))).toBe(16);
    expect(value(readMemory('16.0m'))).toBe(16);
  });

  it('refuses what is not a size, in the words the API and CLI both use', () => {
    expect(readMemory('12x')).toEqual({
      ok: false,
      error: 'expected a size such as 128, 128m, 128Mi or 1g (16 MiB to 8 GiB), got "12x"',
    });
    for (const v of ['', ' ', 'm', '-128', '+128', '1e3', '12 8m', '128mm', '1t', '128b', 'constructor', '0x80', '１２８'])
      expect(readMemory(v), v).toEqual({ ok: false, error: `expected ${MEMORY_EXPECTED}, got ${JSON.stringify(v)}` });
    expect(readMemory(['128', '256'])).toEqual({ ok: false, error: `expected ${MEMORY_EXPECTED}, got ["128","256"]` });
    expect(readMemory(undefined)).toMatchObject({ ok: false });
    expect(readMemory(128.5)).toEqual({ ok: false, error: `expected ${MEMORY_EXPECTED}, got 128.5` });
  });

  it('refuses sizes that are not a whole number of MiB, or out of 16 MiB to 8 GiB, saying what they came to', () => {
    expect(readMemory('0.1g')).toEqual({ ok: false, error: `expected ${MEMORY_EXPECTED}, got "0.1g", which is not a whole number of MiB` });
    expect(readMemory('128.5')).toEqual({
      ok: false,
      error: `expected ${MEMORY_EXPECTED}, got "128.5", which is not a whole number of MiB`,
    });
    expect(readMemory('1000k')).toMatchObject({ error: /which is not a whole number of MiB$/ });
    expect(readMemory('16g')).toEqual({ ok: false, error: `expected ${MEMORY_EXPECTED}, got "16g", which is 16384 MiB` });
    expect(readMemory('8193')).toEqual({ ok: false, error: `expected ${MEMORY_EXPECTED}, got "8193"` });
    expect(readMemory('15')).toEqual({ ok: false, error: `expected ${MEMORY_EXPECTED}, got "15"` });
    expect(readMemory('0')).toMatchObject({ ok: false });
    expect(readMemory(8193)).toMatchObject({ ok: false });
  });
});

describe('readTimeout', () => {
  it('reads seconds, minutes and their sums; no unit is seconds', () => {
    const cases: [string | number, number][] = [
      ['30', 30],
      [30, 30],
      ['30s', 30],
      ['30S', 30],
      ['30 sec', 30],
      ['30secs', 30],
      ['30 seconds', 30],
      ['2m', 120],
      ['2min', 120],
      ['2 minutes', 120],
      ['1m30s', 90],
      ['1m 30s', 90],
      ['1.5m', 90],
      ['0.1m', 6],
      ['15m', 900],
      ['2000ms', 2],
      ['1', 1],
      ['900', 900],
    ];
    for (const [v, s] of cases) expect(value(readTimeout(v)), String(v)).toBe(s);
  });

  it('refuses what is not a whole number of seconds, saying so', () => {
    expect(readTimeout('500ms')).toEqual({
      ok: false,
      error:
        'expected a duration such as 30, 30s, 2m or 1m30s (whole seconds, 1 s to 15 min), got "500ms", which is not a whole number of seconds',
    });
    for (const v of ['1s500ms', '1.5', '0.01m', '1500ms'])
      expect(readTimeout(v), v).toEqual({
        ok: false,
        error: `expected ${TIMEOUT_EXPECTED}, got "${v}", which is not a whole number of seconds`,
      });
  });

  it('refuses what is not a duration, or out of 1 s to 15 min', () => {
    for (const v of ['', 'abc', '30x', '-5', '1m30', '30s1m', '1m1m', 's', '1d', '1e3', '30 s s', 'ms'])
      expect(readTimeout(v), v).toEqual({ ok: false, error: `expected ${TIMEOUT_EXPECTED}, got ${JSON.stringify(v)}` });
    expect(readTimeout('1h')).toEqual({ ok: false, error: `expected ${TIMEOUT_EXPECTED}, got "1h", which is 3600 s` });
    expect(readTimeout('16m')).toEqual({ ok: false, error: `expected ${TIMEOUT_EXPECTED}, got "16m", which is 960 s` });
    expect(readTimeout('901')).toEqual({ ok: false, error: `expected ${TIMEOUT_EXPECTED}, got "901"` });
    expect(readTimeout('0')).toEqual({ ok: false, error: `expected ${TIMEOUT_EXPECTED}, got "0"` });
    expect(readTimeout('0s')).toMatchObject({ ok: false });
    expect(readTimeout(1.5)).toEqual({ ok: false, error: `expected ${TIMEOUT_EXPECTED}, got 1.5` });
    expect(readTimeout(['30', '60'])).toMatchObject({ ok: false });
  });
});

describe('quote', () => {
  it('keeps what it quotes short and on one line', () => {
    expect(quote('12x')).toBe('"12x"');
    expect(quote('a\nb\u001b[2J')).toBe('"a\\nb\\u001b[2J"');
    expect(quote('x'.repeat(1000))).toBe(`"${'x'.repeat(60)}..."`);
    expect(quote(['a', 'b'])).toBe('["a","b"]');
    expect(quote(undefined)).toBe('undefined');
    expect(readMemory('9'.repeat(10_000))).toEqual({ ok: false, error: `expected ${MEMORY_EXPECTED}, got "${'9'.repeat(60)}..."` });
  });
});
