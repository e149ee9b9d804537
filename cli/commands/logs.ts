// logs N (one call's logs), logs NAME (the logs of a function's latest calls) and logs NAME --follow
// (new calls' logs as they finish, from the API's event stream GET /events, reconnecting when it drops).
import { InvalidArgumentError, type Command } from 'commander';
import { z } from 'zod';
import { CallStatusSchema, isFinal, nameSchema, type Call } from '../../common/model.js';
import type { ApiClient } from '../client/api.js';
import { NAMESPACE_HEADER, type ClientConfig } from '../client/config.js';
import { ApiError, UnreachableError, UsageError, errText } from '../client/errors.js';
import { duration } from '../client/format.js';
import { act, clientCommand, examples, positiveInt, type Deps } from './common.js';

interface LogsOpts {
  follow?: boolean;
  limit: number;
  json?: boolean;
}

// What a call event carries (GET /events), as much as a log block needs.
const EventSchema = z.object({
  callNum: z.number(),
  funcName: z.string(),
  version: z.number().optional(),
  status: CallStatusSchema,
  node: z.string().optional(),
  durationMs: z.number().optional(),
  logs: z.string().optional(),
  error: z.string().optional(),
  truncated: z.boolean().optional(),
});
type Shown = Pick<Call, 'callNum' | 'funcName' | 'version' | 'status' | 'node' | 'durationMs' | 'logs' | 'error'>;
const RECONNECT_MS = 1000;

const count = (v: string): number => {
  if (!/^\d+$/.test(v) || Number(v) > 1000) throw new InvalidArgumentError('--limit must be a whole number from 0 to 1000');
  return Number(v);
};

const target = (c: Shown): string => (c.version ? `${c.funcName}@${c.version}` : c.funcName);

// One call's logs as a block: a header line when several calls are shown, then what it printed, then
// its error output.
function printCall(deps: Deps, c: Shown, header: boolean, json: boolean): void {
  const { out } = deps;
  if (json) {
    out.print(
      JSON.stringify({
        callNum: c.callNum,
        funcName: c.funcName,
        version: c.version,
        status: c.status,
        node: c.node,
        logs: c.logs ?? '',
        error: c.error ?? '',
      }),
    );
    return;
  }
  const logs = (c.logs ?? '').replace(/\n$/, '');
  const error = (c.error ?? '').replace(/\n$/, '');
  if (header)
    out.print(
      `==> call ${c.callNum} · ${target(c)} · ${c.status}${c.durationMs !== undefined ? ` · ${duration(c.durationMs)}` : ''}${c.node ? ` · ${c.node}` : ''} <==`,
    );
  if (logs) out.print(logs);
  if (error) {
    if (logs) out.print('--- error ---');
    out.print(error);
  }
}

async function oneCall(deps: Deps, api: ApiClient, callNum: number, json: boolean): Promise<void> {
  const c = await api.call(callNum);
  if (json) return deps.out.json({ callNum: c.callNum, status: c.status, logs: c.logs ?? '', error: c.error ?? '' });
  printCall(deps, c, false, false);
  if (!isFinal(c.status)) deps.out.note(`call ${c.callNum} is ${c.status}: its logs are kept when it ends`);
  else if (!c.logs && !c.error) deps.out.note(`call ${c.callNum} (${c.status}) printed nothing`);
}

/** Yields each `event: call` data of an SSE stream; returns when the stream ends. */
async function* sseEvents(body: ReadableStream<Uint8Array>, onHello: () => void): AsyncGenerator<unknown> {
  let buf = '';
  const decoder = new TextDecoder();
  for await (const chunk of body) {
    buf += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const frame = buf.slice(0, end);
      buf = buf.slice(end + 2);
      const type = /^event: (.*)$/m.exec(frame)?.[1];
      const data = /^data: (.*)$/m.exec(frame)?.[1];
      if (type === 'hello') onHello();
      else if (type === 'call' && data) yield JSON.parse(data);
    }
  }
}

async function follow(deps: Deps, cfg: ClientConfig, api: ApiClient, name: string, o: LogsOpts): Promise<void> {
  const shown = new Set<number>();
  const show = (c: Shown): void => {
    if (shown.has(c.callNum)) return;
    shown.add(c.callNum);
    if (shown.size > 10_000) shown.delete(shown.values().next().value!);
    printCall(deps, c, true, o.json === true);
  };
  // The latest calls first (like tail -f), oldest of them first.
  const recent = await api.calls({ funcName: name, limit: Math.max(1, o.limit) });
  for (const c of recent.slice(0, o.limit).reverse()) if (isFinal(c.status)) show(c);
  const since = recent[0]?.callNum ?? 0; // catching up after a reconnect never goes further back

  const headers: Record<string, string> = { accept: 'text/event-stream' };
  if (cfg.token) headers.authorization = `Bearer ${cfg.token}`;
  if (cfg.namespace) headers[NAMESPACE_HEADER] = cfg.namespace;
  const url = `${cfg.api}/events?funcName=${encodeURIComponent(name)}`;
  let first = true;
  for (;;) {
    let res: Response;
    try {
      res = await fetch(url, { headers });
    } catch (e) {
      if (first) throw new UnreachableError(cfg.api, errText(e));
      await new Promise((r) => setTimeout(r, RECONNECT_MS));
      continue;
    }
    if (!res.ok || !res.body) throw new ApiError(res.status, `${res.status} ${(await res.text()).slice(0, 200)}`);
    const onHello = async (): Promise<void> => {
      if (first) deps.out.note(`following the logs of ${name} (Ctrl-C to stop)`);
      else {
        // Calls that finished while we were away: from the call list, never twice.
        for (const c of (await api.calls({ funcName: name, limit: 100 })).reverse()) if (c.callNum > since && isFinal(c.status)) show(c);
      }
      first = false;
    };
    try {
      for await (const raw of sseEvents(res.body, () => void onHello())) {
        const e = EventSchema.safeParse(raw);
        if (!e.success || !isFinal(e.data.status)) continue;
        // The event carries the logs cut short when long; the call itself has all of them.
        show(e.data.truncated ? await api.call(e.data.callNum) : e.data);
      }
    } catch {
      /* the stream broke: reconnect */
    }
    await new Promise((r) => setTimeout(r, RECONNECT_MS));
  }
}

export function logsCommand(p: Command, deps: Deps): void {
  examples(
    clientCommand(
      p,
      'logs <call|function>',
      "print logs: one call's (by number), or a function's latest calls'; --follow streams new calls' logs",
    )
      .option('-f, --follow', "keep going: print each new call's logs as it finishes (function only)")
      .option('-n, --limit <n>', "how many of a function's latest calls to show first (0 with --follow: only new ones)", count, 10)
      .option('--json', 'print JSON (one object per call, one per line, for a function)'),
    ['zfaas logs 42', 'zfaas logs hello', 'zfaas logs hello --follow', 'zfaas logs hello -f -n 0 --json'],
  ).action(
    act(deps, async (what: string, o: LogsOpts, cmd: Command) => {
      const api = await deps.client(cmd);
      if (/^\d+$/.test(what)) {
        if (o.follow) throw new UsageError('--follow follows a function: zfaas logs NAME --follow');
        return oneCall(deps, api, positiveInt('call number')(what), o.json === true);
      }
      if (!nameSchema.safeParse(what).success) throw new UsageError(`"${what}" is neither a call number nor a function name`);
      await api.fn(what); // an unknown function is an error now, not silence forever
      if (o.follow) return follow(deps, await deps.config(cmd), api, what, o);
      const calls = o.limit ? (await api.calls({ funcName: what, limit: o.limit })).reverse() : [];
      if (calls.length === 0) return deps.out.note(`${what} has no calls yet`);
      for (const c of calls) printCall(deps, c, true, o.json === true);
    }),
  );
}
