// The checks an entry name or a symlink target needs on its own (no absolute paths, no "..", no
// control or invisible characters, bounded lengths), and how a name is shown in a message. Checks
// that need the whole archive (duplicates, links between entries) are in checker.ts.
import { ArchiveError } from './types.js';

export const MAX_NAME_BYTES = 1024;

function isControlChar(code: number): boolean {
  return code < 0x20 || (code >= 0x7f && code <= 0x9f);
}

function hasControlChar(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (isControlChar(s.charCodeAt(i))) return true;
  return false;
}

/** Characters that hide or reorder what a name shows (bidirectional overrides, zero-width). */
const INVISIBLE = /[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/;
const MAX_COMPONENT_BYTES = 255; // NAME_MAX: a longer component cannot be created, so it is refused here

/** A name as it may appear in a message: escaped if it holds control characters, cut if very long. */
export function show(name: string): string {
  const cut = name.length > 200 ? `${name.slice(0, 200)}...` : name;
  return hasControlChar(cut) || INVISIBLE.test(cut)
    ? JSON.stringify(cut).replace(INVISIBLE_ALL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
    : cut;
}
const INVISIBLE_ALL = new RegExp(INVISIBLE.source, 'g');

/** Names and link targets must be what they look like: valid UTF-8, nothing invisible. */
function checkChars(raw: string, what: string, field: 'name' | 'target'): void {
  if (hasControlChar(raw)) throw new ArchiveError(`${what} has a control character in its ${field}`);
  // Tar names are decoded as UTF-8: invalid bytes (an overlong "..", a Latin-1 name) became U+FFFD.
  if (raw.includes('\ufffd')) throw new ArchiveError(`${what}'s ${field} is not valid UTF-8`);
  if (INVISIBLE.test(raw)) throw new ArchiveError(`${what} has an invisible or bidirectional control character in its ${field}`);
}

/** Checks an entry name and returns it normalized ("./a//b/" -> "a/b", "./" -> ""). */
export function normalizeName(raw: string, what: string): string {
  if (Buffer.byteLength(raw, 'utf8') > MAX_NAME_BYTES) {
    throw new ArchiveError(`${what} name is longer than ${MAX_NAME_BYTES} bytes: ${show(raw.slice(0, 64))}`);
  }
  checkChars(raw, `${what} ${show(raw)}`, 'name');
  if (raw.startsWith('/') || raw.startsWith('\\') || /^[A-Za-z]:/.test(raw)) {
    throw new ArchiveError(`${what} ${show(raw)} is an absolute path`);
  }
  const parts = raw.split(/[/\\]/);
  if (parts.includes('..')) throw new ArchiveError(`${what} ${show(raw)} escapes the archive root`);
  if (raw.includes('\\')) throw new ArchiveError(`${what} ${show(raw)} has a backslash in its name`);
  if (parts.some((p) => Buffer.byteLength(p, 'utf8') > MAX_COMPONENT_BYTES)) {
    throw new ArchiveError(`${what} ${show(raw)} has a name component longer than ${MAX_COMPONENT_BYTES} bytes`);
  }
  return parts.filter((p) => p !== '' && p !== '.').join('/');
}

export function parentOf(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

/** Whether a target climbs above the root by ".." alone, from a link `depth` directories down. */
export function lexicallyEscapes(depth: number, target: string): boolean {
  let level = depth;
  for (const part of target.split('/')) {
    if (part === '..') level -= 1;
    else if (part !== '' && part !== '.') level += 1;
    if (level < 0) return true;
  }
  return false;
}

/** The checks a symlink target needs on its own; escape checks need the whole tree (Checker). */
export function checkSymlinkTarget(name: string, target: string): string {
  if (target === '') throw new ArchiveError(`symlink ${show(name)} has an empty target`);
  if (Buffer.byteLength(target, 'utf8') > MAX_NAME_BYTES) {
    throw new ArchiveError(`symlink ${show(name)} has a target longer than ${MAX_NAME_BYTES} bytes`);
  }
  checkChars(target, `symlink ${show(name)} -> ${show(target)}`, 'target');
  if (target.startsWith('/') || target.startsWith('\\') || /^[A-Za-z]:/.test(target)) {
    throw new ArchiveError(`symlink ${show(name)} -> ${show(target)} points to an absolute path`);
  }
  if (target.includes('\\')) throw new ArchiveError(`symlink ${show(name)} -> ${show(target)} has a backslash in its target`);
  return target;
}
