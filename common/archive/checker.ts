// The tally and the virtual tree of one archive: entry and byte counts against the limits,
// duplicates, entries below files or symlinks, hardlink and symlink targets followed through the
// archive's other links. Both the inspection and the extraction pass run every entry through it.
import { tooLarge, tooManyEntries } from './messages.js';
import { checkSymlinkTarget, lexicallyEscapes, normalizeName, show } from './names.js';
import { ArchiveError, type ArchiveFormat, type ArchiveLimits, type ArchiveSummary, type Item, type Kind } from './types.js';

const MAX_LISTED_FILES = 1000;
const MAX_SYMLINK_HOPS = 40;
/** Path components one symlink resolution may walk through (bounds the CPU a crafted archive can cost). */
const MAX_RESOLVE_STEPS = 4096;
/** ... and all of them together. */
const MAX_RESOLVE_STEPS_TOTAL = 1_000_000;

/** A node of the archive's virtual tree. Directories that only exist as parents are "implicit". */
interface TreeNode {
  kind: Kind;
  /** The archive name of the entry; for an implicit directory, of the first entry below it. */
  name: string;
  implicit: boolean;
  /** Symlinks: the raw target. */
  target?: string;
  children?: Map<string, TreeNode>;
}

type Resolution = 'inside' | 'escapes' | 'loop';

/**
 * The running tally and the archive's virtual tree. Every check that does not need the bytes of a
 * file lives here, so the inspection pass and the extraction pass apply exactly the same rules.
 * All checks cost time linear in the names' lengths (with a global budget for following symlinks),
 * so a crafted archive cannot buy much CPU.
 */
export class Checker {
  entries = 0;
  totalBytes = 0;
  fileCount = 0;
  readonly files: string[] = [];
  private readonly root: TreeNode = { kind: 'dir', name: '', implicit: false, children: new Map() };
  private readonly symlinks: { rel: string; node: TreeNode }[] = [];
  private resolveBudget = MAX_RESOLVE_STEPS_TOTAL;

  constructor(private readonly limits: ArchiveLimits) {}

  /** Counts and checks one entry; returns its normalized path ("" for the root directory). */
  add(item: Item): string {
    this.entries += 1;
    if (this.entries > this.limits.maxEntries) throw tooManyEntries(this.limits);
    const rel = normalizeName(item.name, 'entry');
    if (rel === '') {
      if (item.kind === 'dir') return rel;
      throw new ArchiveError(`entry ${show(item.name)} has an empty name`);
    }
    const parts = rel.split('/');
    const last = parts.pop() ?? '';
    // Walk (and create) the parents: nothing may live under a symlink or a file, so extraction
    // never has to go through a link.
    let dir = this.root;
    for (const part of parts) {
      const children = dir.children ?? new Map<string, TreeNode>();
      let child = children.get(part);
      if (!child) {
        child = { kind: 'dir', name: item.name, implicit: true, children: new Map() };
        children.set(part, child);
      } else if (child.kind === 'symlink') {
        throw new ArchiveError(`entry ${show(item.name)} is inside symlink ${show(child.name)}`);
      } else if (child.kind !== 'dir') {
        throw new ArchiveError(`entry ${show(item.name)} is inside ${show(child.name)}, which is not a directory`);
      }
      dir = child;
    }
    const siblings = dir.children ?? new Map<string, TreeNode>();
    const existing = siblings.get(last);
    if (existing) {
      if (existing.kind === 'dir' && item.kind === 'dir') {
        if (existing.implicit) Object.assign(existing, { implicit: false, name: item.name });
        return rel;
      }
      if (existing.implicit) {
        // Entries below it came first: same conflict as above, found from the other side.
        throw new ArchiveError(
          item.kind === 'symlink'
            ? `entry ${show(existing.name)} is inside symlink ${show(item.name)}`
            : `entry ${show(existing.name)} is inside ${show(item.name)}, which is not a directory`,
        );
      }
      throw new ArchiveError(`entry ${show(item.name)} appears more than once in the archive`);
    }
    const node: TreeNode = { kind: item.kind, name: item.name, implicit: false };
    if (item.kind === 'dir') node.children = new Map();
    if (item.kind === 'symlink') {
      node.target = checkSymlinkTarget(item.name, item.target ?? '');
      // Fail fast on a plain escape; finish() re-checks following the archive's other symlinks.
      if (lexicallyEscapes(parts.length, node.target)) {
        throw new ArchiveError(`symlink ${show(item.name)} -> ${show(node.target)} escapes the archive root`);
      }
      this.symlinks.push({ rel, node });
    }
    if (item.kind === 'hardlink') this.checkHardlinkTarget(item.name, item.target ?? '');
    siblings.set(last, node);
    if (item.kind === 'file' || item.kind === 'hardlink') {
      this.fileCount += 1;
      if (this.files.length < MAX_LISTED_FILES) this.files.push(rel);
    }
    return rel;
  }

  /** Fail fast on sizes the headers admit to; the real count in addBytes() is what counts. */
  reserve(declared: number): void {
    if (this.totalBytes + declared > this.limits.maxTotalBytes) throw tooLarge(this.limits);
  }

  addBytes(n: number): void {
    this.totalBytes += n;
    if (this.totalBytes > this.limits.maxTotalBytes) throw tooLarge(this.limits);
  }

  /** Whole-tree checks, once every entry is known. */
  finish(format: ArchiveFormat): ArchiveSummary {
    for (const { rel, node } of this.symlinks) {
      const target = node.target ?? '';
      const where = this.resolveSymlink(rel, target);
      if (where === 'escapes') {
        throw new ArchiveError(`symlink ${show(node.name)} -> ${show(target)} escapes the archive root`);
      }
      if (where === 'loop') {
        throw new ArchiveError(`symlink ${show(node.name)} -> ${show(target)} loops or goes through too many symlinks`);
      }
    }
    if (this.fileCount === 0) throw new ArchiveError('archive holds no files');
    return { format, entries: this.entries, totalBytes: this.totalBytes, files: [...this.files] };
  }

  private lookup(rel: string): TreeNode | undefined {
    let node: TreeNode | undefined = this.root;
    for (const part of rel.split('/')) node = node?.children?.get(part);
    return node;
  }

  /** A hardlink must name a regular file that came earlier in the archive. */
  private checkHardlinkTarget(name: string, rawTarget: string): void {
    let target: string;
    try {
      target = normalizeName(rawTarget, 'target');
    } catch {
      throw new ArchiveError(`hardlink ${show(name)} -> ${show(rawTarget)} points outside the archive`);
    }
    const node = target === '' ? undefined : this.lookup(target);
    if (!node || (node.kind !== 'file' && node.kind !== 'hardlink')) {
      throw new ArchiveError(`hardlink ${show(name)} -> ${show(rawTarget)} does not point to a regular file earlier in the archive`);
    }
  }

  /**
   * Follows a symlink the way the kernel would once everything is extracted: from the link's own
   * directory, component by component, substituting the archive's other symlinks as they come up,
   * so that "a -> ." plus "b -> a/.." is seen to leave the root.
   */
  private resolveSymlink(rel: string, target: string): Resolution {
    // The directories from the root down to the link's parent (they exist: add() walked them).
    const stack: (TreeNode | undefined)[] = [this.root];
    const parents = rel.split('/');
    parents.pop();
    for (const part of parents) stack.push(stack[stack.length - 1]?.children?.get(part));
    // Components still to walk, as a stack of targets (one more per symlink followed).
    const frames: { parts: string[]; next: number }[] = [{ parts: target.split('/'), next: 0 }];
    let hops = 0;
    let steps = 0;
    while (frames.length > 0) {
      const frame = frames[frames.length - 1];
      const part = frame?.parts[frame.next];
      if (!frame || part === undefined) {
        frames.pop();
        continue;
      }
      frame.next += 1;
      steps += 1;
      this.resolveBudget -= 1;
      if (this.resolveBudget < 0) throw new ArchiveError('archive has too many symlinks to check');
      if (steps > MAX_RESOLVE_STEPS) return 'loop';
      if (part === '' || part === '.') continue;
      if (part === '..') {
        if (stack.length === 1) return 'escapes';
        stack.pop();
        continue;
      }
      const child = stack[stack.length - 1]?.children?.get(part);
      if (child?.kind === 'symlink') {
        hops += 1;
        if (hops > MAX_SYMLINK_HOPS) return 'loop';
        frames.push({ parts: (child.target ?? '').split('/'), next: 0 });
        continue;
      }
      stack.push(child); // undefined below a name the archive does not have: a dangling link, harmless
    }
    return 'inside';
  }
}
