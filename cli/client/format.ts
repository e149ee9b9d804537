// Small formatters for tables: sizes, durations, ages, one-line previews.
import { printable } from './errors.js';

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['kB', 'MB', 'GB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

export function duration(ms: number | undefined): string {
  if (ms === undefined) return '';
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  return `${Math.floor(ms / 60_000)} m ${Math.round((ms % 60_000) / 1000)} s`;
}

/** "12s ago", "3m ago", ... from an ISO date; the date itself when it cannot be read. */
export function ago(iso: string | undefined, now = Date.now()): string {
  if (!iso) return '';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86_400)}d ago`;
}

/** The first line of a text, cut to `max` characters, for a table cell. */
export function preview(text: string | undefined, max = 40): string {
  if (!text) return '';
  const one = text.replace(/\s+/g, ' ').trim();
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
}

/** A result as a person wants to read it: JSON pretty-printed, anything else as it came. */
export function prettyResult(result: string): string {
  const t = result.trim();
  if (t === '') return result;
  try {
    return JSON.stringify(JSON.parse(t), null, 2);
  } catch {
    return result.replace(/\n$/, '');
  }
}

/** The first line of a text (a stack trace's message line), cut to `max` characters, for a table cell. */
export function firstLine(text: string | undefined, max = 60): string {
  const line = printable((text ?? '').trim().split('\n')[0]?.trim() ?? '');
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/** "in 12s", "in 3m", ... until an ISO date; "due" once it has passed; the date itself when unreadable. */
export function until(iso: string | undefined, now = Date.now()): string {
  if (!iso) return '';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const s = Math.round((t - now) / 1000);
  if (s <= 0) return 'due';
  if (s < 60) return `in ${s}s`;
  if (s < 3600) return `in ${Math.floor(s / 60)}m`;
  if (s < 86_400) return `in ${Math.floor(s / 3600)}h`;
  return `in ${Math.floor(s / 86_400)}d`;
}

/** Milliseconds as a setting is written: 500ms, 1.5s, 2m, 1m30s. */
export function msSetting(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  if (ms < 60_000) return `${ms / 1000}s`;
  const m = Math.floor(ms / 60_000);
  const rest = ms % 60_000;
  return rest === 0 ? `${m}m` : `${m}m${rest / 1000}s`;
}
