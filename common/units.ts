// A function's memory and timeout as people write them, read into what zfaas stores: a size such as
// "128m", "512Mi", "1GB" or plain "128" into whole MiB, a duration such as "30s", "2m", "1m30s" or plain
// "30" into whole seconds. The registerFunction handler and `zfaas deploy` both read them here, so a value
// means the same to both and a bad one is refused in the same words: what was expected, then what came.
import { SETTING_LIMITS } from './model.js';

/** A setting read: its stored value, or a refusal (`expected ..., got "..."`) meant for the sender. */
export type Reading<T = number> = { ok: true; value: T } | { ok: false; error: string };

// Refusals quote what was sent; a value may be 64 KB long or hold control characters.
const QUOTE_MAX = 60;
// Longer than any sensible size or duration; also keeps the exact arithmetic below small.
const INPUT_MAX = 64;

/** A value as sent, for a message: strings JSON-quoted (control characters escaped), anything cut short. */
export function quote(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > QUOTE_MAX ? `${v.slice(0, QUOTE_MAX)}...` : v);
  let s: string | undefined;
  try {
    s = JSON.stringify(v);
  } catch {
    s = undefined;
  }
  // What JSON cannot show (a value nested thousands deep overflows the stack) is named, never walked again.
  s ??= Array.isArray(v) ? 'an array' : v !== null && typeof v === 'object' ? 'an object' : String(v);
  return s.length > QUOTE_MAX ? `${s.slice(0, QUOTE_MAX)}...` : s;
}

/** The one shape of every refusal; `why` may add what the value turned out to be. */
export const refuse = (expected: string, got: unknown, why = ''): { ok: false; error: string } => ({
  ok: false,
  error: `expected ${expected}, got ${quote(got)}${why}`,
});

// A decimal as the fraction it is written as ("1.5" is 15/10), so that "0.1g" is known to be exactly
// 102.4 MiB and refused, rather than a float's neighbour of it being rounded one way or the other.
const NUMBER = String.raw`(\d+(?:\.\d+)?|\.\d+)`;
interface Fraction {
  num: bigint;
  den: bigint;
}
function fraction(text: string): Fraction {
  const [int = '', frac = ''] = text.split('.');
  return { num: BigInt(`${int}${frac}` || '0'), den: 10n ** BigInt(frac.length) };
}

const { memory: MEMORY, timeout: TIMEOUT } = SETTING_LIMITS;
const mib = (n: number): string => (n % 1024 === 0 ? `${n / 1024} GiB` : `${n} MiB`);
const seconds = (n: number): string => (n % 60 === 0 ? `${n / 60} min` : `${n} s`);

export const MEMORY_EXPECTED = `a size such as 128, 128m, 128Mi or 1g (${mib(MEMORY.min)} to ${mib(MEMORY.max)})`;
export const TIMEOUT_EXPECTED = `a duration such as 30, 30s, 2m or 1m30s (whole seconds, ${seconds(TIMEOUT.min)} to ${seconds(TIMEOUT.max)})`;

// Size units in KiB. Decimal names (MB, GB) mean the binary sizes, as they do to Docker's --memory:
// whoever writes "128MB" wants the same as "128m", not 122 MiB. No unit: MiB, what is stored.
// A Map, not an object: a "unit" such as "constructor" must not find Object's own properties.
const SIZE_UNITS = new Map<string, bigint>([
  ['', 1024n],
  ...['k', 'kb', 'ki', 'kib'].map((u): [string, bigint] => [u, 1n]),
  ...['m', 'mb', 'mi', 'mib'].map((u): [string, bigint] => [u, 1024n]),
  ...['g', 'gb', 'gi', 'gib'].map((u): [string, bigint] => [u, 1024n * 1024n]),
]);

/** A memory limit: "128", "128m", "128M", "128Mi", "128MiB", "128MB", "1g", "1.5Gi" ... into whole MiB. */
export function readMemory(v: unknown): Reading {
  if (typeof v === 'number')
    return Number.isInteger(v) && v >= MEMORY.min && v <= MEMORY.max ? { ok: true, value: v } : refuse(MEMORY_EXPECTED, v);
  const m = typeof v === 'string' && v.length <= INPUT_MAX ? new RegExp(String.raw`^\s*${NUMBER}\s*([a-z]*)\s*$`, 'i').exec(v) : null;
  const unit = m ? SIZE_UNITS.get((m[2] ?? '').toLowerCase()) : undefined;
  if (!m || unit === undefined) return refuse(MEMORY_EXPECTED, v);
  const { num, den } = fraction(m[1] ?? '');
  const kib = num * unit; // over den
  if (kib % (den * 1024n) !== 0n) return refuse(MEMORY_EXPECTED, v, ', which is not a whole number of MiB');
  const value = Number(kib / (den * 1024n));
  if (value < MEMORY.min || value > MEMORY.max) return refuse(MEMORY_EXPECTED, v, m[2] ? `, which is ${value} MiB` : '');
  return { ok: true, value };
}

// Duration units in milliseconds, written the ways people write them.
const DURATION_UNITS = new Map<string, bigint>([
  ...['ms', 'msec', 'msecs', 'millisecond', 'milliseconds'].map((u): [string, bigint] => [u, 1n]),
  ...['s', 'sec', 'secs', 'second', 'seconds'].map((u): [string, bigint] => [u, 1000n]),
  ...['m', 'min', 'mins', 'minute', 'minutes'].map((u): [string, bigint] => [u, 60_000n]),
  ...['h', 'hr', 'hrs', 'hour', 'hours'].map((u): [string, bigint] => [u, 3_600_000n]),
]);

/** The milliseconds in "1m30s", "2m", "500ms" ... as a fraction; null when it is not a duration. */
function durationMs(text: string): Fraction | null {
  const part = new RegExp(String.raw`\s*${NUMBER}\s*([a-z]+)`, 'y');
  let total: Fraction = { num: 0n, den: 1n };
  let last: bigint | undefined;
  while (part.lastIndex < text.length) {
    const m = part.exec(text);
    const unit = m ? DURATION_UNITS.get(m[2] ?? '') : undefined;
    // Largest unit first, each once ("1m30s", not "30s1m" or "1m1m"): read as people write it, or refused.
    if (!m || unit === undefined || (last !== undefined && unit >= last)) return null;
    last = unit;
    const f = fraction(m[1] ?? '');
    // Both denominators are powers of ten: the larger is a multiple of the smaller.
    const den = f.den > total.den ? f.den : total.den;
    total = { num: total.num * (den / total.den) + f.num * unit * (den / f.den), den };
  }
  return last === undefined ? null : total;
}

/** A call time limit: "30", "30s", "2m", "1m30s", "90000ms" ... into whole seconds. */
export function readTimeout(v: unknown): Reading {
  if (typeof v === 'number')
    return Number.isInteger(v) && v >= TIMEOUT.min && v <= TIMEOUT.max ? { ok: true, value: v } : refuse(TIMEOUT_EXPECTED, v);
  if (typeof v !== 'string' || v.length > INPUT_MAX) return refuse(TIMEOUT_EXPECTED, v);
  const text = v.trim().toLowerCase();
  // No unit: seconds, what is stored.
  const ms = new RegExp(`^${NUMBER}$`).test(text) ? durationMs(`${text}s`) : durationMs(text);
  if (!ms) return refuse(TIMEOUT_EXPECTED, v);
  if (ms.num % (ms.den * 1000n) !== 0n) return refuse(TIMEOUT_EXPECTED, v, ', which is not a whole number of seconds');
  const value = Number(ms.num / (ms.den * 1000n));
  if (value < TIMEOUT.min || value > TIMEOUT.max) return refuse(TIMEOUT_EXPECTED, v, /[a-z]/.test(text) ? `, which is ${value} s` : '');
  return { ok: true, value };
}

const BACKOFF = SETTING_LIMITS.retryBackoff;
export const BACKOFF_EXPECTED = `a duration such as 500ms, 1s, 0.5 or 2m (no unit: seconds; ${BACKOFF.min} ms to ${BACKOFF.max / 60_000} min)`;

/** The wait before a call's first retry: "500ms", "1s", "0.5", "2m" ... into whole milliseconds. */
export function readBackoff(v: unknown): Reading {
  const text = typeof v === 'number' ? String(v) : typeof v === 'string' && v.length <= INPUT_MAX ? v.trim().toLowerCase() : null;
  if (text === null || (typeof v === 'number' && !Number.isFinite(v))) return refuse(BACKOFF_EXPECTED, v);
  const ms = new RegExp(`^${NUMBER}$`).test(text) ? durationMs(`${text}s`) : durationMs(text);
  if (!ms) return refuse(BACKOFF_EXPECTED, v);
  if (ms.num % ms.den !== 0n) return refuse(BACKOFF_EXPECTED, v, ', which is not a whole number of milliseconds');
  const value = Number(ms.num / ms.den);
  if (value < BACKOFF.min || value > BACKOFF.max) return refuse(BACKOFF_EXPECTED, v, `, which is ${value} ms`);
  return { ok: true, value };
}
