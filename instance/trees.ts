// The node's local cache: archives by digest, and prepared function trees (archive unpacked + the
// runtime's `dependencies` run once per function version per node, its result cached on disk).
import { createHash } from 'node:crypto';
import { chown, mkdir, readdir, readFile, rename, rm, stat, writeFile, lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { extractArchive } from '../common/archive/index.js';
import type { FunctionMeta, Runtime } from '../common/model.js';
import type { DepsJob, DepsRun } from '../protocol/worker.js';

export type ArchiveFetcher = (digest: string) => Promise<Buffer>;

export class DependencyError extends Error {}

export interface TreeCacheOptions {
  dataDir: string;
  fetchArchive: ArchiveFetcher;
  runDeps(job: Omit<DepsJob, 'name'>): Promise<DepsRun>; // a miniworker runs the step in a container
  depsNetwork: boolean;
  depsTimeoutMs: number;
  depsMaxMiB: number; // the most a function's tree may hold once its dependencies are installed
}

const exists = (p: string): Promise<boolean> =>
  stat(p).then(
    () => true,
    () => false,
  );

export class TreeCache {
  private readonly preparing = new Map<string, Promise<string>>();
  private readonly prepared = new Map<string, string>(); // key -> tree, once ready (the warm path skips the disk)
  private readonly archiveFetches = new Map<string, Promise<Buffer>>();

  constructor(private readonly o: TreeCacheOptions) {}

  static key(fn: FunctionMeta): string {
    return `${fn.functionName}@${fn.version}`;
  }

  private paths(fn: FunctionMeta): { base: string; tree: string; ready: string } {
    const base = join(this.o.dataDir, 'trees', fn.functionName, `${fn.version}-${fn.digest.slice(0, 12)}`);
    return { base, tree: join(base, 'tree'), ready: join(base, 'ready.json') };
  }

  // Returns the host path of the prepared tree, preparing it once even under concurrent calls.
  prepare(fn: FunctionMeta, runtime: Runtime): Promise<string> {
    const key = `${TreeCache.key(fn)}:${fn.digest}`;
    const done = this.prepared.get(key);
    if (done) return Promise.resolve(done);
    let p = this.preparing.get(key);
    if (!p) {
      p = this.doPrepare(fn, runtime)
        .then((tree) => (this.prepared.set(key, tree), tree))
        .finally(() => this.preparing.delete(key));
      this.preparing.set(key, p);
    }
    return p;
  }

  private async doPrepare(fn: FunctionMeta, runtime: Runtime): Promise<string> {
    const { base, tree, ready } = this.paths(fn);
    if (await exists(ready)) return tree;
    const archive = await this.archive(fn.digest);
    // Unpack into a fresh folder, then rename: a half-prepared tree is never used.
    const work = `${base}.tmp-${process.pid}-${Date.now()}`;
    await rm(work, { recursive: true, force: true });
    await mkdir(work, { recursive: true });
    try {
      const workTree = join(work, 'tree');
      await extractArchive(archive, workTree);
      if (process.getuid?.() === 0) await chownTree(workTree, 1000, 1000);
      const deps = runtime.dependencies.trim();
      let depsLog = '';
      if (deps && (await needsDependencies(workTree, runtime.dependenciesIf))) {
        const built = join(work, 'built');
        await mkdir(built);
        const maxMiB = this.o.depsMaxMiB;
        // A function allowed the network at run time may fetch its packages too; others vendor them.
        const r = await this.o.runDeps({
          fn,
          runtime,
          srcDir: workTree,
          outDir: built,
          maxMiB,
          timeoutMs: this.o.depsTimeoutMs,
          network: this.o.depsNetwork || fn.settings.network,
        });
        depsLog = r.log;
        const tail = r.log.trim().slice(-2000);
        if (r.timedOut) throw new DependencyError(`dependencies step timed out after ${this.o.depsTimeoutMs / 1000} s`);
        if (r.tooLarge || /No space left on device/i.test(tail))
          throw new DependencyError(
            `dependencies step made a tree larger than the ${maxMiB} MiB a function may hold${tail ? `: ${tail.slice(-500)}` : ''}`,
          );
        if (r.oomKilled) throw new DependencyError('dependencies step ran out of memory');
        // Before the exit code: a refused tar is why the container was killed.
        if (r.unpackError) throw new DependencyError(`the tree the dependencies step made could not be unpacked: ${r.unpackError}`);
        if (r.exitCode !== 0) throw new DependencyError(`dependencies step failed (exit ${r.exitCode}): ${tail}`);
        await rm(workTree, { recursive: true, force: true });
        await rename(built, workTree);
        if (process.getuid?.() === 0) await chownTree(workTree, 1000, 1000);
      }
      await writeFile(join(work, 'ready.json'), JSON.stringify({ preparedAt: new Date().toISOString(), deps, depsLog }));
      await rm(base, { recursive: true, force: true });
      await rename(work, base);
      return tree;
    } catch (e) {
      await rm(work, { recursive: true, force: true });
      throw e;
    }
  }

  async archive(digest: string): Promise<Buffer> {
    const file = join(this.o.dataDir, 'archives', digest);
    // Not cached (or unreadable): it is read again from the DB service below.
    const cached = await readFile(file).catch(() => null);
    if (cached && sha256(cached) === digest) return cached;
    let p = this.archiveFetches.get(digest);
    if (!p) {
      p = (async () => {
        const data = await this.o.fetchArchive(digest);
        if (sha256(data) !== digest) throw new Error(`archive ${digest} arrived corrupt (digest mismatch)`);
        await mkdir(join(this.o.dataDir, 'archives'), { recursive: true });
        await writeFile(`${file}.tmp`, data);
        await rename(`${file}.tmp`, file);
        return data;
      })().finally(() => this.archiveFetches.delete(digest));
      this.archiveFetches.set(digest, p);
    }
    return p;
  }
}

// Whether the dependencies step has anything to do (saves a container start for the many functions that
// bring no dependencies). Without a `dependenciesIf` list the step always runs.
export async function needsDependencies(tree: string, files: string[] | undefined): Promise<boolean> {
  if (!files || files.length === 0) return true;
  for (const f of files) {
    // A file that is not there has nothing to check.
    const text = await readFile(join(tree, f), 'utf8').catch(() => null);
    if (text === null) continue;
    if (f.endsWith('.json')) {
      let deps: unknown;
      try {
        deps = (JSON.parse(text) as { dependencies?: unknown }).dependencies;
      } catch {
        return true; // let the real tool report the broken file
      }
      if (deps && typeof deps === 'object' && Object.keys(deps).length > 0 && !(await exists(join(tree, 'node_modules')))) return true;
    } else if (text.split('\n').some((l) => l.trim() !== '' && !l.trim().startsWith('#'))) {
      return true;
    }
  }
  return false;
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function chownTree(dir: string, uid: number, gid: number): Promise<void> {
  await chown(dir, uid, gid);
  for (const name of await readdir(dir)) {
    const p = join(dir, name);
    const st = await lstat(p);
    if (st.isSymbolicLink()) continue;
    if (st.isDirectory()) await chownTree(p, uid, gid);
    else await chown(p, uid, gid);
  }
}
