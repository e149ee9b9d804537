// The REST API as typed calls. Uses the global fetch; every reply is checked against its schema, every
// failure becomes a CliError carrying its exit code (see errors.ts).
import type { ZodType, ZodTypeDef } from 'zod';
import {
  SecretInfoSchema,
  type Call,
  type CallStatus,
  type FunctionMeta,
  type Quotas,
  type Role,
  type Runtime,
  type RuntimeInput,
  type SecretInfo,
} from '../../common/model.js';
import { NAMESPACE_HEADER } from './config.js';
import { ApiError, CliError, UnreachableError, errText } from './errors.js';
import {
  CallSchema,
  CallsSchema,
  DeadLettersSchema,
  DeletedSchema,
  DeployedSchema,
  ErrorBodySchema,
  FunctionDetailSchema,
  FunctionMetaSchema,
  FunctionsSchema,
  KeyViewSchema,
  NamespaceViewSchema,
  NewKeySchema,
  NodesSchema,
  RuntimeSchema,
  RuntimesSchema,
  type Deployed,
  type FunctionDetail,
  type KeyView,
  type NamespaceView,
  type NewKey,
  type NodeView,
  type WhoAmI,
  WhoAmISchema,
} from './schemas.js';
import { multipartBody, progressStream } from './upload.js';
import { ScheduleSchema, type Schedule } from '../../protocol/db.js';
import { TriggerViewSchema, type TriggerInput, type TriggerView } from './triggers.js';

type Schema<T> = ZodType<T, ZodTypeDef, unknown>;
type Query = Record<string, string | number | boolean | undefined>;

interface SendOptions {
  query?: Query;
  json?: unknown;
  /** A raw body (with its content type in headers); streams need `duplex: 'half'`. */
  body?: BodyInit;
  headers?: Record<string, string>;
}

export interface CallFilter {
  funcName?: string;
  status?: CallStatus;
  limit?: number;
  before?: number;
}

export interface InvokeOptions {
  /** Where the API POSTs the call's final record when it ends. */
  callbackUrl?: string;
}

export interface DeadLetterFilter {
  funcName?: string;
  limit?: number;
}

/** The version a replay runs: a number, the dead letter's own ('same'), or unset (the current one). */
export type ReplayVersion = number | 'same';

export interface Progress {
  start(total: number): void;
  update(sent: number): void;
  stop(): void;
}

const WAIT_ROUND_S = 240;

export class ApiClient {
  constructor(
    readonly api: string,
    private readonly token?: string,
    private readonly fetchFn: typeof fetch = fetch,
    /** Sent as X-Zfaas-Namespace: the operator acts in that namespace (a key only in its own). */
    readonly namespace?: string,
  ) {}

  async send<T>(
    method: string,
    path: string,
    schema: Schema<T>,
    o: SendOptions = {},
  ): Promise<{ status: number; data: T; headers: Headers }> {
    const url = new URL(this.api + path);
    for (const [k, v] of Object.entries(o.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { accept: 'application/json', ...o.headers };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (this.namespace) headers[NAMESPACE_HEADER] = this.namespace;
    // Node's fetch streams a ReadableStream body only with duplex 'half' (missing from the DOM typings).
    const init: RequestInit & { duplex?: 'half' } = { method, headers };
    if (o.json !== undefined) {
      headers['content-type'] = 'application/json';
      init.body = JSON.stringify(o.json);
    } else if (o.body !== undefined) {
      init.body = o.body;
      if (o.body instanceof ReadableStream) init.duplex = 'half';
    }

    let res: Response;
    try {
      res = await this.fetchFn(url, init);
    } catch (e) {
      throw this.networkFailure(e);
    }
    let text: string;
    try {
      text = await res.text();
    } catch (e) {
      throw this.networkFailure(e);
    }
    let body: unknown = undefined;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      /* not JSON: handled below */
    }
    if (!res.ok) {
      const err = ErrorBodySchema.safeParse(body);
      const msg = err.success ? err.data.error : text.trim().slice(0, 200) || res.statusText || 'request failed';
      throw new ApiError(res.status, msg);
    }
    const r = schema.safeParse(body);
    if (!r.success) {
      const i = r.error.issues[0];
      const what = body === undefined ? 'not JSON' : `${i?.path.join('.') || 'reply'}: ${i?.message ?? 'unexpected value'}`;
      throw new CliError(`unexpected reply from ${this.api} to ${method} ${path} (${what}); is --api pointing at a zfaas API?`);
    }
    return { status: res.status, data: r.data, headers: res.headers };
  }

  private networkFailure(e: unknown): CliError {
    // fetch wraps the socket error: TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } })
    const cause = e instanceof Error ? (e.cause as { code?: string; message?: string } | undefined) : undefined;
    const code = cause?.code ?? '';
    if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
      return new CliError(`the API at ${this.api} did not answer in time`);
    }
    const reason =
      code === 'ECONNREFUSED' ? 'connection refused' : code === 'ENOTFOUND' ? 'unknown host' : code || cause?.message || errText(e);
    return new UnreachableError(this.api, reason);
  }

  // --- runtimes --------------------------------------------------------------------------------------

  async runtimes(): Promise<Runtime[]> {
    return (await this.send('GET', '/runtimes', RuntimesSchema, { query: { detail: true } })).data;
  }

  async runtime(name: string): Promise<Runtime> {
    return (await this.send('GET', `/runtime/${enc(name)}`, RuntimeSchema)).data;
  }

  async registerRuntime(input: RuntimeInput): Promise<Runtime> {
    return (await this.send('POST', '/registerRuntime', RuntimeSchema, { json: input })).data;
  }

  async deleteRuntime(name: string): Promise<void> {
    await this.send('DELETE', `/runtime/${enc(name)}`, DeletedSchema);
  }

  // --- functions -------------------------------------------------------------------------------------

  async functions(): Promise<FunctionMeta[]> {
    return (await this.send('GET', '/functions', FunctionsSchema, { query: { detail: true } })).data;
  }

  async fn(name: string): Promise<FunctionDetail> {
    return (await this.send('GET', `/functions/${enc(name)}`, FunctionDetailSchema)).data;
  }

  /** One version of a function (its build, say). */
  async fnVersion(name: string, version: number): Promise<FunctionDetail> {
    return (await this.send('GET', `/functions/${enc(name)}`, FunctionDetailSchema, { query: { version } })).data;
  }

  /** Returns null when the function does not exist (any other failure still throws). */
  async fnIfExists(name: string): Promise<FunctionDetail | null> {
    try {
      return await this.fn(name);
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) return null;
      throw e;
    }
  }

  async deploy(
    runtime: string,
    name: string,
    archive: Uint8Array,
    filename: string,
    settings: ReadonlyArray<readonly [string, string]>,
    progress?: Progress,
  ): Promise<Deployed> {
    const { bytes, contentType } = await multipartBody(settings, archive, filename);
    progress?.start(bytes.length);
    try {
      const body = progressStream(bytes, (sent) => progress?.update(sent));
      const path = `/registerFunction/${enc(runtime)}/${enc(name)}`;
      return (
        await this.send('POST', path, DeployedSchema, {
          body,
          headers: { 'content-type': contentType, 'content-length': String(bytes.length) },
        })
      ).data;
    } finally {
      progress?.stop();
    }
  }

  /** A container-image function (POST /registerImageFunction/NAME): the image, its port and readiness, and settings. */
  async deployImage(name: string, body: Record<string, unknown>): Promise<FunctionMeta> {
    return (await this.send('POST', `/registerImageFunction/${enc(name)}`, FunctionMetaSchema, { json: body })).data;
  }

  async rollback(name: string, version?: number): Promise<FunctionMeta> {
    return (
      await this.send('POST', `/functions/${enc(name)}/rollback`, FunctionMetaSchema, { json: version === undefined ? {} : { version } })
    ).data;
  }

  async deleteFunction(name: string): Promise<void> {
    await this.send('DELETE', `/functions/${enc(name)}`, DeletedSchema);
  }

  // --- calls -----------------------------------------------------------------------------------------

  /**
   * `target` is NAME or NAME@VERSION. With `wait`, follows the call until it ends or the API stops waiting
   * for it (the function's timeout and a minute). Each request waits at most WAIT_ROUND_S, well inside
   * fetch's five-minute limit on an answer, so a function that runs for many minutes is still followed.
   */
  async invoke(target: string, params: unknown, wait: boolean, o: InvokeOptions = {}): Promise<{ finished: boolean; call: Call }> {
    const callback = o.callbackUrl === undefined ? {} : { callbackUrl: o.callbackUrl };
    let r = await this.send('POST', '/invokeFunction', CallSchema, {
      json: { funcName: target, params, wait: wait ? WAIT_ROUND_S : false, ...callback },
    });
    if (!wait) return { finished: false, call: r.data };
    while (r.status === 202) {
      r = await this.send('GET', `/call/${r.data.callNum}`, CallSchema, { query: { wait: WAIT_ROUND_S } });
      if (r.status === 202 && Number(r.headers.get('x-zfaas-wait-left') ?? 0) <= 0) break;
    }
    return { finished: r.status === 200, call: r.data };
  }

  async calls(f: CallFilter): Promise<Call[]> {
    return (await this.send('GET', '/calls', CallsSchema, { query: { format: 'list', ...f } })).data;
  }

  async call(callNum: number): Promise<Call> {
    return (await this.send('GET', `/call/${callNum}`, CallSchema)).data;
  }

  async cancel(callNum: number): Promise<Call> {
    return (await this.send('DELETE', `/call/${callNum}`, CallSchema)).data;
  }

  // --- dead letters ----------------------------------------------------------------------------------

  async deadLetters(f: DeadLetterFilter): Promise<Call[]> {
    return (await this.send('GET', '/dead-letters', DeadLettersSchema, { query: { ...f } })).data;
  }

  /** A new call with the dead letter's params; the API answers 409 when it is not listed (or was replayed). */
  async replayDeadLetter(callNum: number, version?: ReplayVersion): Promise<Call> {
    return (await this.send('POST', `/dead-letters/${callNum}/replay`, CallSchema, { json: version === undefined ? {} : { version } }))
      .data;
  }

  /** Takes a listed dead letter off the list without a replay; returns it (deadLetter: 'dismissed'). */
  async dismissDeadLetter(callNum: number): Promise<Call> {
    return (await this.send('DELETE', `/dead-letters/${callNum}`, CallSchema)).data;
  }

  // --- schedules -------------------------------------------------------------------------------------

  async addSchedule(name: string, input: ScheduleInput): Promise<ScheduleView> {
    return (await this.send('POST', `/functions/${enc(name)}/schedules`, ScheduleViewSchema, { json: input })).data;
  }

  async schedules(name: string): Promise<ScheduleView[]> {
    return (await this.send('GET', `/functions/${enc(name)}/schedules`, ScheduleViewSchema.array())).data;
  }

  async deleteSchedule(name: string, id: string): Promise<void> {
    await this.send('DELETE', `/functions/${enc(name)}/schedules/${enc(id)}`, ScheduleViewSchema.pick({ id: true }));
  }

  // --- broker triggers (api/handlers/triggers.ts) -----------------------------------------------------

  async addTrigger(name: string, input: TriggerInput): Promise<TriggerView> {
    return (await this.send('POST', `/functions/${enc(name)}/triggers`, TriggerViewSchema, { json: input })).data;
  }

  async triggers(name: string): Promise<TriggerView[]> {
    return (await this.send('GET', `/functions/${enc(name)}/triggers`, TriggerViewSchema.array())).data;
  }

  async triggerAction(name: string, id: string, action: 'pause' | 'resume'): Promise<TriggerView> {
    return (await this.send('POST', `/functions/${enc(name)}/triggers/${enc(id)}/${action}`, TriggerViewSchema)).data;
  }

  async deleteTrigger(name: string, id: string): Promise<void> {
    await this.send('DELETE', `/functions/${enc(name)}/triggers/${enc(id)}`, TriggerViewSchema.pick({ id: true }));
  }

  // --- tenancy: who a key is, namespaces, their keys, secrets -----------------------------------------

  async whoami(): Promise<WhoAmI> {
    return (await this.send('GET', '/whoami', WhoAmISchema)).data;
  }

  async namespaces(): Promise<NamespaceView[]> {
    return (await this.send('GET', '/namespaces', NamespaceViewSchema.array())).data;
  }

  async namespaceInfo(name: string): Promise<NamespaceView> {
    return (await this.send('GET', `/namespaces/${enc(name)}`, NamespaceViewSchema)).data;
  }

  async createNamespace(name: string, quotas?: Quotas): Promise<NamespaceView> {
    return (await this.send('POST', '/namespaces', NamespaceViewSchema, { json: quotas ? { name, quotas } : { name } })).data;
  }

  async setQuotas(name: string, quotas: Quotas): Promise<NamespaceView> {
    return (await this.send('PUT', `/namespaces/${enc(name)}/quotas`, NamespaceViewSchema, { json: quotas })).data;
  }

  async createKey(namespace: string, role: Role): Promise<NewKey> {
    return (await this.send('POST', `/namespaces/${enc(namespace)}/keys`, NewKeySchema, { json: { role } })).data;
  }

  async keys(namespace: string): Promise<KeyView[]> {
    return (await this.send('GET', `/namespaces/${enc(namespace)}/keys`, KeyViewSchema.array())).data;
  }

  async rotateKey(namespace: string, id: string): Promise<NewKey> {
    return (await this.send('POST', `/namespaces/${enc(namespace)}/keys/${enc(id)}/rotate`, NewKeySchema)).data;
  }

  async revokeKey(namespace: string, id: string): Promise<KeyView> {
    return (await this.send('DELETE', `/namespaces/${enc(namespace)}/keys/${enc(id)}`, KeyViewSchema)).data;
  }

  async secrets(): Promise<SecretInfo[]> {
    return (await this.send('GET', '/secrets', SecretInfoSchema.array())).data;
  }

  /** Makes a secret (the API answers 409 when it exists); the value goes as base64, byte for byte. */
  async createSecret(name: string, value: Uint8Array): Promise<SecretInfo> {
    const json = { name, valueBase64: Buffer.from(value).toString('base64') };
    return (await this.send('POST', '/secrets', SecretInfoSchema, { json })).data;
  }

  /** Makes or replaces a secret's value. */
  async setSecret(name: string, value: Uint8Array): Promise<SecretInfo> {
    const json = { valueBase64: Buffer.from(value).toString('base64') };
    return (await this.send('PUT', `/secrets/${enc(name)}`, SecretInfoSchema, { json })).data;
  }

  async deleteSecret(name: string): Promise<void> {
    await this.send('DELETE', `/secrets/${enc(name)}`, DeletedSchema);
  }

  // --- nodes -----------------------------------------------------------------------------------------

  async nodes(): Promise<NodeView[]> {
    return (await this.send('GET', '/nodes', NodesSchema)).data;
  }
}

const enc = encodeURIComponent;

// A function's schedule as the API shows it (with its next tick), and what adding one sends.
const ScheduleViewSchema = ScheduleSchema.extend({ next: ScheduleSchema.shape.createdAt.nullable() });
export type ScheduleView = Schedule & { next: string | null };
export interface ScheduleInput {
  cron: string;
  timezone?: string;
  params?: unknown;
  missed?: 'skip' | 'once';
}
