// The delivery loop of one trigger: each message of its broker becomes one call, made with the message's
// idempotency key (model.ts messageKey), and is acknowledged to the broker only once that call reached a
// final state (after every retry its function's `retries` allow): at least once, and a redelivered message
// finds the call its first delivery made instead of making another. A call that ended failed is
// acknowledged too (its dead letter is listed with the message's source in its params) or, with
// `deadLetter: broker`, handed to the broker's dead-letter target. A message longer than `maxBytes` makes
// no call: it is acknowledged (or dead-lettered) and listed in the trigger's stats. At most `inFlight`
// messages are unacknowledged at once (the source holds to it), and no message is taken while the API's
// queue of the function's calls is `maxQueue` long or longer (backpressure) or the trigger is paused.
import type { EventEmitter } from 'node:events';
import type { CallEvents } from '../calls.js';
import { errText, type Logger } from '../../common/log.js';
import { isFinal, type Call, type CallOutcome } from '../../common/model.js';
import type { Trigger, TriggerStats } from '../../protocol/db.js';
import { messageKey, paramsOf, type MessageParams } from './model.js';
import type { Message, Source, SourceFactory } from './source.js';

// How a call's end is learnt: the API's `finished` event (Calls.events), else the record, read again
// every `pollMs` (the call may end in another API's hands, or its event may come before the record).
export class CallEnds {
  private readonly waiting = new Map<number, ((c: { status: Call['status'] }) => void)[]>();
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly d: {
      events: Pick<EventEmitter<CallEvents>, 'on' | 'off'>;
      getCall(callNum: number): Promise<Call | null>;
      pollMs?: number;
    },
  ) {
    d.events.on('finished', this.onFinished);
  }

  private readonly onFinished = ({ callNum, outcome }: { callNum: number; outcome: CallOutcome }): void => {
    if (!this.waiting.has(callNum)) return;
    // DONE is final whatever the retry rule; a failure may be retried: the record tells.
    if (outcome.status === 'DONE') this.settle(callNum, 'DONE');
    else void this.check(callNum);
  };

  private settle(callNum: number, status: Call['status']): void {
    const w = this.waiting.get(callNum);
    this.waiting.delete(callNum);
    for (const f of w ?? []) f({ status });
  }

  private async check(callNum: number): Promise<void> {
    const c = await this.d.getCall(callNum).catch(() => null);
    if (c && isFinal(c.status)) this.settle(callNum, c.status);
  }

  // The call's final status, once it has one.
  wait(call: Pick<Call, 'callNum' | 'status'>): Promise<{ status: Call['status'] }> {
    if (isFinal(call.status)) return Promise.resolve({ status: call.status });
    return new Promise((resolve) => {
      const list = this.waiting.get(call.callNum) ?? [];
      list.push(resolve);
      this.waiting.set(call.callNum, list);
      this.arm();
    });
  }

  private arm(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void Promise.all([...this.waiting.keys()].map((n) => this.check(n))).finally(() => {
        if (this.waiting.size > 0) this.arm();
      });
    }, this.d.pollMs ?? 1000);
    this.timer.unref();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.d.events.off('finished', this.onFinished);
  }
}

export interface DeliveryDeps {
  // Makes (or finds, by its key) the call of a message; throws a QuotaExceeded (retryAfterS) past a quota.
  invoke(
    funcName: string,
    params: MessageParams,
    idempotency: { key: string; hash: string; ttlS: number },
  ): Promise<{ call: Call; replayed: boolean }>;
  ends: Pick<CallEnds, 'wait'>;
  queueLength(funcName: string): number; // calls of the function waiting in this API's queue
  log: Logger;
}

const REJECTED_KEPT = 20;
const ACK_TRIES = 10;

export class TriggerDelivery {
  private source?: Source;
  private closed = false;
  private paused: boolean;
  private throttled = false; // backpressure
  private inFlight = 0;
  private connected = false;
  private lastError?: string;
  private delivered: number;
  private failed: number;
  private rejected: TriggerStats['rejected'];
  private lagSeen?: number;
  private watch?: NodeJS.Timeout;
  private generation = 0;
  private readonly twins = new Map<string, Message[]>(); // messages in flight by identity, with their redeliveries

  constructor(
    private trigger: Trigger,
    private readonly factory: SourceFactory,
    private readonly password: string | undefined,
    private readonly d: DeliveryDeps,
  ) {
    this.paused = trigger.paused;
    this.delivered = trigger.stats?.delivered ?? 0;
    this.failed = trigger.stats?.failed ?? 0;
    this.rejected = trigger.stats?.rejected ?? [];
  }

  get id(): string {
    return this.trigger.id;
  }
  get funcName(): string {
    return this.trigger.funcName;
  }

  start(): void {
    void this.connect(0);
    this.watch = setInterval(() => this.pressure(), 200);
    this.watch.unref();
  }

  // (Re)makes the source, after a failed start or a source that went down, backing off up to 10 s.
  private async connect(failures: number): Promise<void> {
    if (this.closed) return;
    const gen = ++this.generation;
    const src = this.factory({
      trigger: this.trigger,
      password: this.password,
      log: this.d.log,
      events: {
        message: (m) => void this.handle(m),
        state: (up, why) => {
          if (gen !== this.generation) return;
          this.connected = up;
          if (why) this.lastError = why;
        },
        down: (why) => {
          if (gen !== this.generation) return;
          this.connected = false;
          this.lastError = why;
          void src.close().catch(() => undefined);
          setTimeout(() => void this.connect(1), 1000).unref();
        },
      },
    });
    this.source = src;
    try {
      await src.start();
      if (this.closed) return void src.close().catch(() => undefined);
      this.connected = true;
      src.setPaused(this.paused || this.throttled);
    } catch (e) {
      this.connected = false;
      this.lastError = errText(e);
      this.d.log.warn({ trigger: this.trigger.id, err: this.lastError }, 'trigger cannot reach its broker; trying again');
      await src.close().catch(() => undefined);
      if (gen !== this.generation || this.closed) return;
      setTimeout(() => void this.connect(failures + 1), Math.min(10_000, 500 * 2 ** failures)).unref();
    }
  }

  private pressure(): void {
    const long = this.d.queueLength(this.trigger.funcName) >= this.trigger.settings.maxQueue;
    if (long === this.throttled) return;
    this.throttled = long;
    this.source?.setPaused(this.paused || this.throttled);
  }

  setPaused(paused: boolean): void {
    this.paused = paused;
    this.source?.setPaused(this.paused || this.throttled);
  }

  // A newer record of the trigger (settings are fixed at creation; its pause may have changed).
  update(t: Trigger): void {
    this.trigger = { ...this.trigger, paused: t.paused };
    if (t.paused !== this.paused) this.setPaused(t.paused);
  }

  private async handle(m: Message): Promise<void> {
    // Given again while its call runs (an ack deadline passed, a reconnection): acknowledged with the first.
    const twins = this.twins.get(m.id);
    if (twins) return void twins.push(m);
    this.twins.set(m.id, []);
    this.inFlight++;
    try {
      const t = this.trigger;
      if (m.body.length > t.settings.maxBytes) {
        const reason = `${m.body.length} bytes, more than the trigger's maxBytes (${t.settings.maxBytes})`;
        this.d.log.warn({ trigger: t.id, messageId: m.id, bytes: m.body.length }, 'message too long for a call; not called');
        await this.finish(m, false);
        this.rejected = [
          { id: m.id.slice(0, 512), subject: m.subject.slice(0, 512), bytes: m.body.length, reason, at: new Date().toISOString() },
          ...this.rejected,
        ].slice(0, REJECTED_KEPT);
        return;
      }
      // Taken just as the trigger was paused (a pull under way): held until it is resumed.
      while (this.paused && !this.closed) await new Promise((r) => setTimeout(r, 200).unref());
      const call = await this.callOf(m);
      if (!call) return; // closed meanwhile: the broker gives it again to whoever consumes next
      const { status } = await this.d.ends.wait(call);
      if (this.closed) return;
      await this.finish(m, status === 'DONE');
    } catch (e) {
      // The acknowledgement did not reach the broker: it delivers the message again, and its key finds this call.
      this.lastError = errText(e);
      this.d.log.warn({ trigger: this.trigger.id, messageId: m.id, err: this.lastError }, 'message not acknowledged');
    } finally {
      // Redeliveries left after a failed acknowledgement (the call did end): acknowledged as well as may be.
      // Closed, nothing is acknowledged: the broker gives them to the next consumer.
      if (!this.closed) for (const twin of this.twins.get(m.id) ?? []) void twin.ack().catch(() => undefined);
      this.twins.delete(m.id);
      this.inFlight--;
      this.source?.settled();
    }
  }

  // Makes the message's call, trying again (after the quota's wait, or a second) until it is made.
  private async callOf(m: Message): Promise<Pick<Call, 'callNum' | 'status'> | null> {
    const t = this.trigger;
    const params = paramsOf(t, m);
    const key = messageKey(t, m.id);
    while (!this.closed) {
      try {
        return (await this.d.invoke(t.funcName, params, key)).call;
      } catch (e) {
        const retryAfterS = (e as { retryAfterS?: unknown }).retryAfterS;
        this.lastError = errText(e);
        await new Promise((r) => setTimeout(r, typeof retryAfterS === 'number' ? retryAfterS * 1000 : 1000).unref());
      }
    }
    return null;
  }

  private async finish(m: Message, ok: boolean): Promise<void> {
    // The first delivery, then every redelivery that came meanwhile (also while these were acknowledged).
    const done = new Set<Message>();
    for (;;) {
      const one = [m, ...(this.twins.get(m.id) ?? [])].find((x) => !done.has(x));
      if (!one) break;
      done.add(one);
      // A broker restarting or a connection coming back may refuse it for a moment: tried a few times.
      for (let attempt = 1; ; attempt++) {
        try {
          if (!ok && this.trigger.settings.deadLetter === 'broker' && one.deadLetter) await one.deadLetter();
          else await one.ack();
          break;
        } catch (e) {
          if (attempt >= ACK_TRIES || this.closed) throw e;
          await new Promise((r) => setTimeout(r, 500).unref());
        }
      }
    }
    this.twins.delete(m.id); // at once, in the turn that found none left
    if (ok) this.delivered++;
    else this.failed++;
  }

  // What the trigger's record shows of this consumer (written with each renewal of its lease).
  async stats(): Promise<TriggerStats> {
    try {
      // A broker that does not answer leaves the last known lag (the lease must still be renewed).
      const src = this.source;
      if (this.connected && src) {
        let t: NodeJS.Timeout | undefined;
        const late = new Promise<undefined>((r) => (t = setTimeout(() => r(undefined), 1000)));
        this.lagSeen = (await Promise.race([src.lag(), late]).finally(() => clearTimeout(t))) ?? this.lagSeen;
      }
    } catch {
      /* the last known lag stays */
    }
    return {
      connected: this.connected,
      ...(this.lagSeen !== undefined ? { lag: this.lagSeen } : {}),
      inFlight: this.inFlight,
      delivered: this.delivered,
      failed: this.failed,
      ...(this.lastError ? { lastError: this.lastError.slice(0, 1024) } : {}),
      rejected: this.rejected,
      at: new Date().toISOString(),
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.watch);
    await this.source?.close().catch(() => undefined);
  }
}
