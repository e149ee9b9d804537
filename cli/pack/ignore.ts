// The .zfaasignore engine: reading the file into gitignore-like lines, and matching paths against
// such lines (last matching rule wins, an ignored directory hides everything below it). Only the
// CLI packs directories, so only the CLI has it.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError, errText } from '../client/errors.js';

export const IGNORE_FILE = '.zfaasignore';

/** gitignore-like lines: blank lines and # comments dropped, "\#" keeps a leading hash. */
export function ignoreLines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => (l.startsWith('\\#') ? l.slice(1) : l));
}

/** The lines of dir's .zfaasignore; none when it has none. */
export async function readIgnore(dir: string): Promise<string[]> {
  try {
    return ignoreLines(await readFile(join(dir, IGNORE_FILE), 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new UsageError(`cannot read ${join(dir, IGNORE_FILE)}: ${errText(e)}`);
  }
}

interface IgnoreRule {
  negate: boolean;
  dirOnly: boolean;
  /** No slash in the pattern: matched against the last path component at any depth. */
  basename: boolean;
  re: RegExp;
}

function globToRegExp(glob: string): string {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob.charAt(i);
    if (c === '*') {
      if (glob.charAt(i + 1) === '*') {
        if (glob.charAt(i + 2) === '/') {
          out += '(?:.*/)?';
          i += 2;
        } else {
          out += '.*';
          i += 1;
        }
      } else {
        out += '[^/]*';
      }
    } else if (c === '?') {
      out += '[^/]';
    } else if (c === '[') {
      const close = glob.indexOf(']', i + 2);
      if (close < 0) {
        out += '\\[';
      } else {
        let cls = glob.slice(i + 1, close).replace(/\\/g, '\\\\');
        if (cls.startsWith('!')) cls = `^${cls.slice(1)}`;
        out += `[${cls}]`;
        i = close;
      }
    } else if (c === '\\' && i + 1 < glob.length) {
      i += 1;
      out += glob.charAt(i).replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    } else {
      out += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    }
  }
  return out;
}

function parseIgnoreLine(line: string): IgnoreRule | null {
  let s = line.trim();
  if (s === '' || s.startsWith('#')) return null;
  const negate = s.startsWith('!');
  if (negate) s = s.slice(1);
  const dirOnly = s.endsWith('/');
  s = s.replace(/\/+$/, '');
  const anchored = s.startsWith('/') || s.includes('/');
  s = s.replace(/^\/+/, '');
  if (s === '') return null;
  return { negate, dirOnly, basename: !anchored, re: new RegExp(`^${globToRegExp(s)}$`) };
}

/** A .gitignore-style matcher: last matching rule wins, and an ignored directory hides all below it. */
export function ignoreMatcher(patterns: readonly string[]): (rel: string, isDir: boolean) => boolean {
  const rules = patterns.map(parseIgnoreLine).filter((r): r is IgnoreRule => r !== null);
  const matches = (rel: string, isDir: boolean): boolean => {
    let ignored = false;
    const base = rel.slice(rel.lastIndexOf('/') + 1);
    for (const rule of rules) {
      if (rule.dirOnly && !isDir) continue;
      if (rule.re.test(rule.basename ? base : rel)) ignored = !rule.negate;
    }
    return ignored;
  };
  return (rel, isDir) => {
    const parts = rel.split('/').filter((p) => p !== '' && p !== '.');
    for (let i = 1; i <= parts.length; i++) {
      if (matches(parts.slice(0, i).join('/'), i < parts.length || isDir)) return true;
    }
    return false;
  };
}
