// One container's life on the node, from its create to its removal (after OpenWhisk's ContainerProxy): the
// session owns the container's line to its loader, the secrets its folder holds, the call it runs and its
// removal, and moves its record in the table (containers.ts) only along the declared transitions. The
// Docker work goes to the miniworker that holds the container, through a lease on its job slot that the
// pool took when it decided; a removal goes to that miniworker at any time. Whatever way a call ends, the
// session leaves its container either ready for the next call (idle) or on its way out: never in between.
// A container of a function with containerConcurrency N > 1 (and a loader of protocol 3) runs up to N calls
// at once, each with its own deadline: one that passes it ends TIMEOUT alone (its loader is told to cancel
// it) and the container takes no more calls and goes once the others have ended; a loader that dies ends
// every call in it.
// A container of one call at a time may take one more behind the call it runs (placement.ts): written to
// its line at once when the call ahead is on the line and the secrets are as it needs them, else when the
// call ahead has ended. Should the container go before its loader answered the call ahead, the call
// behind never began: it goes back to the node's queue (line.ts NotBegun). One cancelled before it was
// written is withdrawn; one already written runs when its turn comes and its answer is dropped.
import { chown, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { callEnv, functionEnv, limitsOf, paramsOf, UID } from '../common/container-spec.js';
import { MAX_OUTPUT } from '../common/docker.js';
import { errText, type Logger } from '../common/log.js';
import type { CallOutcome, FunctionMeta, Runtime, WebResponse } from '../common/model.js';
import { failure } from '../common/faults.js';
import { TRUNCATION_MARK } from '../miniworker/outcome.js';
import {
  BASE64_RE,
  CONCURRENT_PROTOCOL,
  HEADER_TOKEN_RE,
  HOP_BY_HOP,
  HttpResponseSchema,
  RESULT_LIMIT,
  SECRETS_DIR,
} from '../protocol/loader.js';
import { isForbiddenHeader } from '../common/web-headers.js';
import { inSync, type ExitReport, type RunJob, type SecretFile } from '../protocol/worker.js';
import type { ContainerTable } from './containers.js';
import { LineBroken, LineClosed, LineTimeout, LoaderLine, NotBegun } from './line.js';
import { StreamRelay } from './stream-relay.js';
import { WorkerDied, type Lease, type WorkerPort } from './miniworkers.js';
import type { Work } from './work.js';
import { loadLimitMs, openLineToImageUser } from './image-functions.js';

const START_TIMEOUT_MS = 30_000; // a new container's loader must dial in within this
const SECRETS_TIMEOUT_MS = 10_000; // a loader writes a function's secrets (a few small files) within this
const EXIT_GRACE_MS = 1000; // after its container exited, how long its line is given to end by itself
// A loader that sets each call's variables with setenv grows with every call (the C library keeps every
// value a variable ever had): its warm container is replaced after this many calls. One of
// ENV_VIEW_PROTOCOL (or an older one that says `steady`) does not grow so and is kept while it is used; a container without a loader starts a
// new process for each call and keeps nothing of it.
export const RECYCLE_AFTER_CALLS = 10_000;

export interface SessionDeps {
  table: ContainerTable;
  workers: Pick<WorkerPort, 'remove'>;
  linesDir: string;
  slotsDir: string;
  bridgeDir?: string; // where zfaas-bridge is, for image functions' containers
  log: Logger;
  runJob(work: Work, name: string): RunJob;
  jobId(): number;
  forgotten(s: ContainerSession): void; // out of the table: its room is free
  slotsChanged?(s: ContainerSession): void; // it may take (or no longer waits to take) more calls: decide again
  recycleAfterCalls?: number; // RECYCLE_AFTER_CALLS unless a test says another
  // A warm call ended: its loader's `took` (µs, unset from a loader that does not say) and its round trip (ms).
  paced?(key: string, tookUs: number | undefined, roundTripMs: number): void;
}

// The calls a function's container may run at once: its containerConcurrency, for a loader that can.
export const slotsOf = (fn: FunctionMeta, runtime: Runtime): number =>
  runtime.loader !== undefined ? (fn.settings.containerConcurrency ?? 1) : 1;

export class LoadFailed extends Error {}
// The container was removed while a call was being set up in it (the call was cancelled, its container
// exited): the flow stops there.
export class Gone extends Error {}
// A stem cell could not take the function: the call is decided again.
export class StemRefused extends Error {}

interface Behind {
  work: Work;
  written: boolean; // on the line behind the call ahead
  withdrawn: boolean; // cancelled before it was written
  turn: Promise<void>; // the call ahead has ended (or the container goes)
  go(): void;
}

export class ContainerSession {
  private line?: LoaderLine;
  private readonly held = new Map<string, string>(); // lined: the secrets its folder holds (name -> stamp)
  private removal?: Promise<ExitReport | undefined>;
  private spent = false; // removed once its call ends instead of serving another
  private orphan = false; // its miniworker died: the container went (or goes) with it
  private readonly serving = new Set<Work>(); // the calls it runs (and the one behind them)
  private behind?: Behind; // a call behind the one it runs
  private syncing?: Promise<void>; // secrets being given to its loader (one request of that kind at a time)
  private creating?: Promise<unknown>; // its create, until the miniworker answered it
  // The format its function got, as the loader said: a json function ignores a web call's request (its
  // params were made of it), so that request is not sent to it.
  private format?: string;
  readonly slotDir?: string; // stem cells: the host folder a function's tree is put into

  private constructor(
    private readonly d: SessionDeps,
    readonly id: string,
    readonly owner: string,
    readonly runtime: Runtime,
    stem: boolean,
  ) {
    if (stem) this.slotDir = join(d.slotsDir, id);
  }

  // A new session, in the table from now on (`creating`): the container counts against the node's limit
  // from the moment it is decided, before its create is sent.
  static open(
    d: SessionDeps,
    o: { id: string; owner: string; key: string; runtime: Runtime; stem: boolean; slots?: number },
  ): ContainerSession {
    const lined = o.runtime.loader !== undefined;
    d.table.add({ id: o.id, owner: o.owner, key: o.key, runtime: o.runtime.name, lined, slots: o.slots });
    return new ContainerSession(d, o.id, o.owner, o.runtime, o.stem);
  }

  get rec() {
    return this.d.table.get(this.id);
  }

  get lined(): boolean {
    return this.runtime.loader !== undefined;
  }

  // Creates the container on the lease's miniworker and waits until it runs (with a loader: until the
  // loader has dialled in). A failure removes it and throws.
  async start(lease: Lease, o: { fn?: FunctionMeta; treeDir?: string }): Promise<void> {
    try {
      const reply = await (this.creating = lease.job(
        (async () => {
          if (this.slotDir) await makeSlot(this.slotDir);
          const lineDir = this.lined ? join(this.d.linesDir, this.id) : undefined;
          if (lineDir) this.line = await LoaderLine.listen(lineDir);
          if (lineDir && o.fn?.image) await openLineToImageUser(lineDir);
          const bridgeDir = o.fn?.image ? this.d.bridgeDir : undefined; // an image function's loader
          const plan = { id: this.id, runtime: this.runtime, fn: o.fn, treeDir: this.slotDir ?? o.treeDir!, lineDir, bridgeDir };
          return { type: 'create' as const, plan };
        })(),
      ));
      if (!reply.ok) throw new Error(reply.error ?? 'create failed');
      this.move('starting');
      if (this.line) await this.line.ready(START_TIMEOUT_MS);
    } catch (e) {
      if (e instanceof WorkerDied) throw e;
      // Its line closed because its miniworker died while the loader was starting: the same loss.
      if (this.orphan) throw new WorkerDied('the miniworker holding its container died');
      void this.discard();
      throw e;
    }
  }

  // Its function loaded into its loader (nothing to do without one). A failure removes it and throws.
  async load(fn: FunctionMeta, timeoutMs: number): Promise<void> {
    if (!this.line) return;
    this.move('loading');
    const wanted = slotsOf(fn, this.runtime);
    // Several calls at once only where the loader speaks the protocol that carries them.
    const slots = wanted > 1 && this.line.version >= CONCURRENT_PROTOCOL ? wanted : 1;
    try {
      const r = await this.line.request(
        {
          op: 'load',
          dir: this.runtime.path,
          handler: fn.settings.handler ?? null,
          env: functionEnv(fn, this.runtime),
          format: fn.settings.format ?? 'auto',
          ...(slots > 1 ? { concurrency: slots } : {}),
        },
        timeoutMs,
      );
      if (r.op === 'loaded' && r.ok) {
        this.format = r.format;
        if (slots > 1) this.line.allowCalls(slots);
        if (wanted > 1) {
          this.d.table.setSlots(this.id, slots);
          this.d.slotsChanged?.(this);
        }
        return;
      }
      throw new LoadFailed(r.op === 'loaded' || r.op === 'error' ? (r.error ?? 'the function could not be loaded') : 'unexpected reply');
    } catch (e) {
      if (this.orphan) throw new WorkerDied('the miniworker holding its container died');
      void this.discard();
      throw e;
    }
  }

  // Ready, never used: a stem cell, or a container that holds its function before its first call.
  ready(): void {
    this.move('warm');
  }

  // Taken for a call that runs in it now (beside those it runs, in a container with a free slot).
  take(work: Work): void {
    if (this.rec?.state === 'busy') {
      if (this.removal) throw new Gone('the container was removed');
      this.d.table.join(this.id);
    } else this.move('busy');
    this.serving.add(work);
    if ((this.rec?.slots ?? 1) > this.serving.size) this.d.slotsChanged?.(this);
  }

  // Taken for a call that goes behind the one it runs (one at a time over its line).
  takeBehind(work: Work): void {
    if (this.removal) throw new Gone('the container was removed');
    this.d.table.queueBehind(this.id);
    let go = (): void => undefined;
    const turn = new Promise<void>((resolve) => (go = resolve));
    this.behind = { work, written: false, withdrawn: false, turn, go };
    this.serving.add(work);
  }

  // The call it was taken or made for has ended, however: if the container is still being set up for it
  // or still marked busy with it, it goes (nothing else would ever free it). Whether it had to.
  settle(work: Work): boolean {
    const s = this.rec?.state;
    const mine = s === 'busy' ? this.serving.has(work) : s === 'creating' || s === 'starting' || s === 'loading';
    if (!mine) return false;
    void this.discard();
    return true;
  }

  // A stem cell (already adopted in the table) takes the function: its tree and limits, then its load.
  async adopt(lease: Lease, work: Work): Promise<void> {
    let error: string | undefined;
    try {
      const reply = await lease.job({
        type: 'adopt',
        id: this.id,
        treeDir: work.treeDir,
        slotDir: this.slotDir!,
        limits: limitsOf(work.fn),
      });
      if (!reply.ok) error = reply.error ?? 'adopt failed';
    } catch (e) {
      if (e instanceof WorkerDied) throw e;
      error = errText(e);
    }
    if (error === undefined) return;
    void this.discard();
    throw new StemRefused(`could not put the function into a stem cell: ${error}`);
  }

  // Loads the function (a new container, or a stem cell that just took it), then runs the call in it.
  async loadAndCall(work: Work): Promise<CallOutcome> {
    try {
      await this.load(work.fn, loadLimitMs(work.fn, work.fn.settings.timeout * 1000));
    } catch (e) {
      if (e instanceof WorkerDied) throw e;
      // A function that cannot load (no handler, a syntax error) fails its call; the container is spent.
      const error = e instanceof LineTimeout ? 'the function did not finish loading within its timeout' : errText(e);
      return failure('function', error);
    }
    this.take(work);
    return this.call(work);
  }

  // One call over the container's line: no process starts, nothing passes through Docker.
  async call(work: Work): Promise<CallOutcome> {
    const line = this.line;
    const started = Date.now();
    const timeoutS = work.fn.settings.timeout;
    const deadline = started + timeoutS * 1000;
    const b = this.behind?.work === work ? this.behind : undefined;
    try {
      if (!line) throw new LineClosed('the container has no line');
      if (b && !(line.callInFlight && !this.syncing && inSync(work.secrets, this.held))) {
        await b.turn;
        if (b.withdrawn) throw new Gone('the call was cancelled before it began');
        if (!line.open) throw new NotBegun('the container went before the call ahead of it ended', true);
      }
      // In sync (as nearly always), the call is on the line before anything else runs.
      if (!inSync(work.secrets, this.held) || this.syncing) await this.syncSecrets(line, work);
      let sent = performance.now();
      const ahead = b && !b.withdrawn && this.behind === b && line.callInFlight;
      if (ahead) b.written = true;
      const http = this.format === 'json' ? undefined : work.http;
      // A web call's answer may come streamed (stream-relay.ts).
      const relay = http
        ? new StreamRelay({ sink: work.stream, check: checkResponse, pause: () => line.pause(), resume: () => line.resume() })
        : undefined;
      const r = await line.request(
        {
          op: 'call',
          id: callId(work),
          params: paramsOf(work.params),
          env: callEnv({ callNum: work.callNum, replica: work.replica, attempt: work.attempt, deadline }),
          ...(http ? { http } : {}),
        },
        timeoutS * 1000,
        relay && ((m) => relay.take(m)),
        ahead ? { onBegin: () => (sent = performance.now()) } : undefined,
      );
      const durationMs = Date.now() - started;
      if (r.op === 'error') throw new LineBroken(`the loader refused the call: ${r.error}`);
      if (r.op !== 'result') throw new LineBroken('unexpected reply');
      const key = this.rec?.key;
      if (key) this.d.paced?.(key, r.took, performance.now() - sent);
      let logs = r.logs ?? '';
      // A call that leaves processes behind (a fork bomb, a daemon, a miner) spends its container.
      if (r.stray && r.stray > 0) {
        // A call already on the line behind it has begun by now: it ends first, then the container goes.
        if (this.behind?.written && this.behind.work !== work) {
          this.spent = true;
          this.done(work);
        } else void this.discard();
        logs += `${logs && !logs.endsWith('\n') ? '\n' : ''}[zfaas: the call left ${r.stray} process${r.stray === 1 ? '' : 'es'} running; the container was removed]\n`;
      } else this.done(work);
      if (r.ok && relay?.streamed) return relay.done({ ok: true, logs, durationMs });
      if (r.ok && r.http !== undefined) {
        // A web answer is checked like a request: what comes out of a container is untrusted.
        const checked = checkResponse(r.http);
        if (typeof checked === 'string') return { ...failure('response', `malformed response: ${checked}`), logs, durationMs };
        return { status: 'DONE', result: textPrefix(checked.body), logs, durationMs, response: checked };
      }
      if (r.ok) {
        const result = (r.result ?? '').slice(0, RESULT_LIMIT);
        return { status: 'DONE', result: r.truncated ? result + TRUNCATION_MARK : result, logs, durationMs };
      }
      // The loader says when the function's answer was what failed (a response it could not carry).
      return { ...failure(r.fault === 'response' ? 'response' : 'function', r.error ?? 'the function failed'), logs, durationMs };
    } catch (e) {
      const durationMs = Date.now() - started;
      if (e instanceof NotBegun || (b && e instanceof Gone)) throw e; // back to the queue, or cancelled
      if (e instanceof LineTimeout) {
        if (this.concurrent && this.serving.has(work)) {
          // Others run in it: this call ends alone; the container takes no more and goes after them.
          line?.cancel(callId(work));
          this.closeAfter(work);
          return { ...failure('timeout', `function ran past its timeout of ${timeoutS} s and was cancelled`), durationMs };
        }
        void this.discard();
        return { ...failure('timeout', `function ran past its timeout of ${timeoutS} s and was killed`), durationMs };
      }
      if (e instanceof LineBroken) {
        void this.discard();
        return { ...failure('response', `${e.message}: the container was removed`), durationMs };
      }
      // The miniworker holding the container died: the call was its job as much as the container was.
      if (this.orphan) throw new WorkerDied('the miniworker holding its container died');
      // The loader went away during the call: out of memory, process.exit(), a crash in native code.
      const exit = await this.discard(true);
      return { ...failure('function', diedText(exit, work.fn.settings.memory)), durationMs };
    }
  }

  // A call as a `docker exec` in the container (a runtime without a loader), on its miniworker's lease.
  async exec(lease: Lease, work: Work): Promise<CallOutcome> {
    const reply = await lease.job({ type: 'exec', jobId: this.d.jobId(), id: this.id, job: this.d.runJob(work, `${this.id}-exec`) });
    if (reply.alive) this.done(work);
    else this.forget(); // its miniworker removed it (a timeout, a crash, a call that left processes)
    return reply.outcome;
  }

  // Whether it runs several calls at once (a function's containerConcurrency).
  private get concurrent(): boolean {
    return (this.rec?.slots ?? 1) > 1;
  }

  // After a call: ready for the next one, unless it must go (once the calls it runs beside have ended); a
  // call behind it begins.
  private done(work: Work): void {
    const rec = this.rec;
    if (!rec || rec.state !== 'busy' || !this.serving.has(work)) return;
    this.serving.delete(work);
    if (work.spend) this.spent = true;
    const b = this.behind;
    if (b && b.work !== work) {
      this.behind = undefined;
      this.d.table.advance(this.id, true);
      if (this.spent) this.d.table.close(this.id);
      b.go();
      return;
    }
    if (this.serving.size > 0) {
      this.d.table.leave(this.id);
      if (this.spent) this.d.table.close(this.id);
      return;
    }
    if (this.spent || rec.closed || this.grown(rec.calls)) void this.discard();
    else this.move('idle');
  }

  // Its loader grew with the variables of this many calls: past the limit, it goes.
  private grown(calls: number): boolean {
    return !!this.line && !this.line.steady && calls >= (this.d.recycleAfterCalls ?? RECYCLE_AFTER_CALLS);
  }

  // A call ended but for its loader (it passed its deadline): the container takes no more calls, and goes
  // once the others have ended.
  private closeAfter(work: Work): void {
    this.d.table.close(this.id);
    this.done(work);
  }

  // Its secrets as the call needs them, one `secrets` request at a time when calls run at once.
  private async syncSecrets(line: LoaderLine, work: Work): Promise<void> {
    while (!inSync(work.secrets, this.held)) {
      if (this.syncing) {
        await this.syncing.catch(() => undefined);
        if (!line.open) throw new LineClosed('the loader hung up');
        continue;
      }
      this.syncing = this.giveSecrets(line, work.secrets ?? []).finally(() => (this.syncing = undefined));
      await this.syncing;
    }
  }

  // Brings the container's secrets folder to what the call needs: the values that are new or changed since
  // it last got them, and the names to keep (a secret the function no longer names is removed). Any failure
  // breaks the line: what the folder holds is not known any more, so the container goes.
  private async giveSecrets(line: LoaderLine, want: SecretFile[]): Promise<void> {
    const files: Record<string, string> = {};
    for (const f of want) if (this.held.get(f.name) !== f.stamp) files[f.name] = f.value;
    this.held.clear(); // until the loader says it has them
    let r;
    try {
      r = await line.request({ op: 'secrets', dir: SECRETS_DIR, files, keep: want.map((f) => f.name) }, SECRETS_TIMEOUT_MS);
    } catch (e) {
      if (e instanceof LineTimeout) throw new LineBroken("the loader did not write the function's secrets in time");
      throw e;
    }
    if (r.op === 'error') throw new LineBroken(`the loader refused the function's secrets: ${r.error}`);
    if (r.op !== 'secretsSet') throw new LineBroken('unexpected reply');
    if (!r.ok) throw new LineBroken(`the loader could not write the function's secrets: ${r.error ?? 'no reason given'}`);
    for (const f of want) this.held.set(f.name, f.stamp);
  }

  // Removed once the calls it runs end (now, when it runs none): a secret it holds is gone.
  spend(): void {
    this.spent = true;
    this.d.table.close(this.id);
    const s = this.rec?.state;
    if (s === 'idle' || s === 'warm') void this.discard();
  }

  // One of its calls was cancelled: in a container that runs others beside it, its loader ends that call
  // alone; else the container is killed with it.
  cancelCall(work: Work): void {
    const b = this.behind;
    if (b?.work === work) {
      if (b.written) return; // its loader runs it after the call ahead: what it answers is dropped
      b.withdrawn = true;
      this.behind = undefined;
      this.serving.delete(work);
      this.d.table.advance(this.id, false);
      return b.go();
    }
    if (this.concurrent && this.serving.has(work) && this.line && this.line.version >= CONCURRENT_PROTOCOL) {
      this.line.cancel(callId(work));
      return;
    }
    this.cancel();
  }

  // Its call was cancelled: the container is killed with whatever runs in it.
  cancel(): void {
    if (this.rec?.state === 'busy' && !this.removal) this.move('cancelling');
    void this.discard();
  }

  // Kills and removes the container (once, however many ask); with `report`, says how it ended.
  discard(report = false): Promise<ExitReport | undefined> {
    if (this.removal) return this.removal;
    if (!this.rec) return Promise.resolve(undefined);
    this.d.table.move(this.id, 'removing');
    this.line?.close();
    this.behind?.go();
    // A remove that overtook its create would find nothing, and the create would then make a container
    // nobody counts: it goes once the miniworker has answered the create.
    const created = (this.creating ?? Promise.resolve()).catch(() => undefined);
    this.removal = created.then(() => this.d.workers.remove(this.owner, this.id, report)).finally(() => this.forget());
    return this.removal;
  }

  // Its miniworker died: the line goes now; the record stays (`removing`) until a sweep has removed what
  // the miniworker held (forget(true)), so that the node never counts fewer containers than the engine has.
  // Whether its create was still under way (the engine may finish it after a first sweep).
  lostOwner(): boolean {
    const creating = this.rec?.state === 'creating';
    this.orphan = true;
    this.line?.close(new LineClosed('the miniworker holding the container died'));
    this.behind?.go();
    if (this.rec && this.rec.state !== 'removing') this.d.table.move(this.id, 'removing');
    this.removal ??= Promise.resolve(undefined);
    return creating;
  }

  // The node stops: its line goes (the miniworker removes the container).
  closeLine(): void {
    this.line?.close();
  }

  // Out of the table: the engine no longer has it (for a container of a miniworker that died: once swept).
  forget(swept = false): void {
    if (this.orphan && !swept) return;
    if (!this.rec) return;
    this.d.table.move(this.id, 'removed');
    this.line?.close();
    this.line = undefined;
    // A folder already gone is what we want; the node's stop removes the whole slots folder.
    if (this.slotDir) void rm(this.slotDir, { recursive: true, force: true }).catch(() => undefined);
    this.d.forgotten(this);
  }

  // The container's process ended on its own: a call on its line learns it from the line; one waiting for
  // its loader to dial in, at once; one holding no call is removed.
  exited(): void {
    // A call behind another: the line's own end (all the loader wrote read by then) says whether it began.
    if (this.behind?.written && this.line?.open) {
      const line = this.line;
      setTimeout(() => line.close(new LineClosed('the container exited')), EXIT_GRACE_MS).unref();
      return;
    }
    this.line?.close(new LineClosed('the container exited'));
    const s = this.rec?.state;
    if (s === 'warm' || s === 'idle') void this.discard();
  }

  private move(to: Parameters<ContainerTable['move']>[1]): void {
    if (this.removal) throw new Gone('the container was removed');
    this.d.table.move(this.id, to);
  }
}

// A call's id on the line: one per call and replica.
const callId = (work: Work): number => work.callNum * 2 + (work.replica ?? 0);

// A function's web response as a proxy may send it on, or what is wrong with it.
export function checkResponse(raw: unknown): WebResponse | string {
  const r = HttpResponseSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    return `${issue?.path.join('.') || 'response'}: ${issue?.message ?? 'invalid'}`;
  }
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(r.data.headers)) {
    if (!HEADER_TOKEN_RE.test(name)) return `header name ${JSON.stringify(name.slice(0, 60))} is not a token`;
    for (const v of Array.isArray(value) ? value : [value]) if (/[\r\n\0]/.test(v)) return `header ${name} contains CR, LF or NUL`;
    const lower = name.toLowerCase();
    // The API sets its own length; headers that would act for the API's origin are not the function's to send.
    if (!HOP_BY_HOP.has(lower) && lower !== 'content-length' && !isForbiddenHeader(lower)) headers[lower] = value;
  }
  const body = r.data.body;
  if (!BASE64_RE.test(body) || body.length % 4 !== 0) return 'body is not valid base64';
  return { status: r.data.status, headers, body, bytes: Buffer.byteLength(body, 'base64') };
}

// What the call record keeps of a web answer's body: its start, when it is text.
function textPrefix(b64: string | undefined): string {
  if (!b64) return '';
  const bytes = Buffer.from(b64.slice(0, 1368), 'base64'); // about 1 KiB
  const text = bytes.toString('utf8');
  return text.includes('\uFFFD') ? '' : text;
}

// Why a loader went away in the middle of a call, in the words a function's author needs.
function diedText(exit: ExitReport | undefined, memoryMiB: number): string {
  if (exit?.flooded) return `function wrote more than ${MAX_OUTPUT / (1024 * 1024)} MiB of output and was stopped`;
  if (exit?.oomKilled) return `function was killed: it exceeded its memory limit of ${memoryMiB} MiB`;
  const tail = exit?.stderr.trim().slice(-4000) ?? '';
  const code = exit?.exitCode;
  return `the function process exited${code !== null && code !== undefined ? ` (code ${code})` : ''}${tail ? `: ${tail}` : ''}`;
}

async function makeSlot(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  if (process.getuid?.() === 0) await chown(dir, UID, UID);
}
