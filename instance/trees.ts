// The node's local cache: archives by digest, and prepared function trees; and the builds this node runs.
// A version's build (common/build.ts) runs the runtime's `dependencies` step once, at deploy, on one node;
// every node then unpacks the built tree it stored in the DB service. A version deployed before builds ran
// at deploy still has its step run here, once per node, at its first call.
import { createHash } from 'node:crypto';
import { chown, mkdir, readdir, readFile, rename, rm, stat, writeFile, lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { extractArchive } from '../common/archive/index.js';
import { BUILD_ERROR_MAX, buildFailure, logTail, type BuildEnd } from '../common/build.js';
import type { FunctionMeta, Runtime } from '../common/model.js';
import type { DepsJob, DepsRun } from '../protocol/worker.js';
import { packTree, TreeTooLarge, unpackTree } from './built-tree.js';
import { depsFailure } from './deps-verdict.js';

export type ArchiveFetcher = (digest: string) => Promise<Buffer>;

export class DependencyError extends Error {}

export interface TreeCacheOptions {
  dataDir: string;
  fetchArchive: ArchiveFetcher;
  runDeps(job: Omit<DepsJob, 'name'>): Promise<DepsRun>; // a miniworker runs the step in a container
  depsNetwork: boolean;
  depsTimeoutMs: number;
  depsMaxMiB: number; // the most a function's tree may hold once its dependencies are installed
  buildMaxMiB: number; // the most a built tree may take packed (the DB service keeps it whole)
}

// A build as the node ran it: its end for the record, and the packed tree to store when it made one.
// `node`: it failed for a reason of this node's (its disk, a miniworker that went), not the step's.
export interface BuildResult {
  end: BuildEnd;
  archive?: Buffer;
  node?: true;
}

// The end of a successful step's output its record keeps.
const READY_LOG_MAX = 2000;

const exists = (p: string): Promise<boolean> =>
  stat(p).then(
    () => true,
    () => false,
  );

export class TreeCache {
  private readonly preparing = new Map<string, Promise<string>>();
  private readonly prepared = new Map<string, string>(); // key -> tree, once ready (the warm path skips the disk)
  private readonly archiveFetches = new Map<string, Promise<Buffer>>();
  private readonly building = new Map<string, Promise<BuildResult>>();

  constructor(private readonly o: TreeCacheOptions) {}

  static key(fn: FunctionMeta): string {
    return `${fn.functionName}@${fn.version}`;
  }

  private paths(fn: FunctionMeta): { base: string; tree: string; ready: string } {
    const base = join(this.o.dataDir, 'trees', fn.functionName, `${fn.version}-${fn.digest.slice(0, 12)}`);
    return { base, tree: join(base, 'tree'), ready: join(base, 'ready.json') };
  }

  // Returns the host path of the prepared tree, preparing it once even under concurrent calls. A version
  // built at deploy gets its built tree (no step runs here); one deployed before builds ran at deploy runs
  // its step here, once.
  prepare(fn: FunctionMeta, runtime: Runtime): Promise<string> {
    const key = `${TreeCache.key(fn)}:${fn.digest}`;
    const done = this.prepared.get(key);
    if (done) return Promise.resolve(done);
    let p = this.preparing.get(key);
    if (!p) {
      p = (fn.build ? this.unpackBuilt(fn) : this.doPrepare(fn, runtime))
        .then((tree) => (this.prepared.set(key, tree), tree))
        .finally(() => this.preparing.delete(key));
      this.preparing.set(key, p);
    }
    return p;
  }

  // Runs a version's build (once at a time per version on this node): the source unpacked, the step run on
  // it, the result packed for the DB service and kept here as the prepared tree, so that this node's first
  // call needs nothing more.
  build(fn: FunctionMeta, runtime: Runtime, node: string): Promise<BuildResult> {
    const key = `${TreeCache.key(fn)}:${fn.digest}:${fn.createdAt}`;
    let p = this.building.get(key);
    if (!p) {
      const startedAt = fn.build?.startedAt ?? new Date().toISOString();
      p = this.doBuild(fn, runtime, node, startedAt).finally(() => this.building.delete(key));
      this.building.set(key, p);
    }
    return p;
  }

  private async doBuild(fn: FunctionMeta, runtime: Runtime, node: string, startedAt: string): Promise<BuildResult> {
    const failed = (error: string, log = ''): BuildResult => ({
      end: {
        state: 'failed',
        startedAt,
        finishedAt: new Date().toISOString(),
        node,
        error: error.length > BUILD_ERROR_MAX ? `${error.slice(0, BUILD_ERROR_MAX - 3)}...` : error,
        ...(log ? { log: logTail(log) } : {}),
      },
    });
    const { base } = this.paths(fn);
    const work = `${base}.tmp-${process.pid}-${Date.now()}`;
    await mkdir(work, { recursive: true });
    try {
      const workTree = join(work, 'tree');
      await extractArchive(await this.archive(fn.digest), workTree);
      if (process.getuid?.() === 0) await chownTree(workTree, 1000, 1000);
      const step = await this.runStep(fn, runtime, work, workTree);
      if (step.error !== undefined) return failed(step.error, step.log);
      let archive: Buffer | undefined;
      if (step.ran) {
        try {
          archive = await packTree(workTree, this.o.buildMaxMiB * 1024 * 1024);
        } catch (e) {
          if (!(e instanceof TreeTooLarge)) throw e;
          return failed(
            `the built tree packs to more than the ${this.o.buildMaxMiB} MiB a build may store (ZFAAS_BUILD_MAX_MIB on the nodes): vendor fewer dependencies, or leave out what the function does not need`,
            step.log,
          );
        }
      }
      await this.keep(fn, work, step.log);
      const end: BuildEnd = {
        state: 'ready',
        startedAt,
        finishedAt: new Date().toISOString(),
        node,
        ...(archive ? { digest: sha256(archive), size: archive.length } : {}),
        // Shorter than a failure's: it travels with the version's record wherever that goes.
        ...(step.log ? { log: logTail(step.log, READY_LOG_MAX) } : {}),
      };
      return { end, ...(archive ? { archive } : {}) };
    } catch (e) {
      return { ...failed(`the build could not run on node ${node}: ${e instanceof Error ? e.message : String(e)}`), node: true };
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }

  // The runtime's dependencies step on the unpacked tree in `work`, when it has anything to do; on success
  // `tree` holds the built tree.
  private async runStep(
    fn: FunctionMeta,
    runtime: Runtime,
    work: string,
    tree: string,
  ): Promise<{ ran: boolean; log: string; error?: string }> {
    const deps = runtime.dependencies.trim();
    if (!deps || !(await needsDependencies(tree, runtime.dependenciesIf))) return { ran: false, log: '' };
    const built = join(work, 'built');
    await mkdir(built);
    const limits = { timeoutMs: this.o.depsTimeoutMs, maxMiB: this.o.depsMaxMiB };
    // A function allowed the network at run time may fetch its packages too; others vendor them.
    const r = await this.o.runDeps({
      fn,
      runtime,
      srcDir: tree,
      outDir: built,
      maxMiB: limits.maxMiB,
      timeoutMs: limits.timeoutMs,
      network: this.o.depsNetwork || fn.settings.network,
    });
    const error = depsFailure(r, limits);
    if (error !== undefined) return { ran: true, log: r.log, error };
    await rm(tree, { recursive: true, force: true });
    await rename(built, tree);
    if (process.getuid?.() === 0) await chownTree(tree, 1000, 1000);
    return { ran: true, log: r.log };
  }

  // A prepared tree in `work` becomes the version's tree on this node (a half-prepared one is never used).
  private async keep(fn: FunctionMeta, work: string, depsLog: string): Promise<string> {
    const { base, tree } = this.paths(fn);
    await writeFile(join(work, 'ready.json'), JSON.stringify({ preparedAt: new Date().toISOString(), depsLog }));
    await rm(base, { recursive: true, force: true });
    await rename(work, base);
    return tree;
  }

  // A version built at deploy: its built tree from the DB service (or its source, when the step had nothing
  // to do). A failed or unfinished build has no tree; the API does not send such a version's calls.
  private async unpackBuilt(fn: FunctionMeta): Promise<string> {
    const b = fn.build;
    if (b?.state === 'failed') throw new DependencyError(buildFailure(fn));
    if (b?.state !== 'ready') throw new DependencyError(`version ${fn.version} of ${fn.functionName} is still being built`);
    const { base, tree, ready } = this.paths(fn);
    if (await exists(ready)) return tree;
    const work = `${base}.tmp-${process.pid}-${Date.now()}`;
    await mkdir(work, { recursive: true });
    try {
      const workTree = join(work, 'tree');
      if (b.digest) {
        await mkdir(workTree);
        await unpackTree(await this.archive(b.digest), workTree);
      } else {
        await extractArchive(await this.archive(fn.digest), workTree);
      }
      if (process.getuid?.() === 0) await chownTree(workTree, 1000, 1000);
      return await this.keep(fn, work, '');
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }

  // A version deployed before builds ran at deploy: its step runs here, at its first call.
  private async doPrepare(fn: FunctionMeta, runtime: Runtime): Promise<string> {
    const { base, tree, ready } = this.paths(fn);
    if (await exists(ready)) return tree;
    const archive = await this.archive(fn.digest);
    const work = `${base}.tmp-${process.pid}-${Date.now()}`;
    await rm(work, { recursive: true, force: true });
    await mkdir(work, { recursive: true });
    try {
      const workTree = join(work, 'tree');
      await extractArchive(archive, workTree);
      if (process.getuid?.() === 0) await chownTree(workTree, 1000, 1000);
      const step = await this.runStep(fn, runtime, work, workTree);
      if (step.error !== undefined) throw new DependencyError(step.error);
      return await this.keep(fn, work, step.log);
    } finally {
      await rm(work, { recursive: true, force: true });
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
