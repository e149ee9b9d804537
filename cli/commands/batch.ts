// `zfaas invoke NAME --batch FILE` (fan out one call per params item; progress bar on stderr, summary
// table on stdout) and `zfaas batch ID` (a batch's progress later, or from another terminal).
import { Presets, SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import type { Readable } from 'node:stream';
import { z } from 'zod';
import { jsonDepth, MAX_JSON_DEPTH } from '../../common/json-depth.js';
import { JsonLinesError, parseJsonLines } from '../../common/jsonlines.js';
import { CallStatusSchema } from '../../common/model.js';
import type { ApiClient } from '../client/api.js';
import { EXIT, UsageError, errText } from '../client/errors.js';
import { duration, preview } from '../client/format.js';
import { readBounded } from '../client/read-bounded.js';
import { act, clientCommand, examples, type Deps } from './common.js';

const POLL_MS = 250;
const FAILED_SHOWN = 20;

const AcceptedSchema = z.object({ batchId: z.string(), size: z.number(), funcName: z.string(), version: z.number() });
const ProgressSchema = z.object({
  batchId: z.string(),
  funcName: z.string(),
  version: z.number(),
  state: z.enum(['running', 'finished']),
  size: z.number(),
  done: z.number(),
  failed: z.number(),
  pending: z.number(),
  p50: z.number().nullable(),
  p95: z.number().nullable(),
  callsPerSecond: z.number(),
  elapsedMs: z.number(),
});
type Progress = z.infer<typeof ProgressSchema>;
const ItemSchema = z.object({
  index: z.number(),
  callNum: z.number().nullable(),
  status: CallStatusSchema,
  result: z.string().optional(),
  error: z.string().optional(),
  durationMs: z.number().optional(),
});
type Item = z.infer<typeof ItemSchema>;
const ResultsSchema = z.object({ size: z.number(), items: z.array(ItemSchema) });

/** A JSON array of params, or one JSON value per line (JSON lines). */
export function parseBatch(text: string, what: string): unknown[] {
  const items = parseItems(text, what);
  // The array itself is one level: each item may nest as deeply as one call's params.
  if (jsonDepth(items, MAX_JSON_DEPTH + 1) > MAX_JSON_DEPTH + 1)
    throw new UsageError(`${what}: an item nests more than ${MAX_JSON_DEPTH} levels deep, more than the API takes`);
  return items;
}

function parseItems(text: string, what: string): unknown[] {
  const t = text.trim();
  if (t.startsWith('[')) {
    try {
      return JSON.parse(t) as unknown[];
    } catch (e) {
      throw new UsageError(`${what} is not a valid JSON array: ${errText(e)}`);
    }
  }
  try {
    return parseJsonLines(text);
  } catch (e) {
    if (e instanceof JsonLinesError) throw new UsageError(`${what}, line ${e.line}: not valid JSON: ${e.reason}`);
    throw e;
  }
}

// The API takes a batch body of up to 32 MiB.
const MAX_BATCH_BYTES = 32 * 1024 * 1024;

const readSource = (file: string, stdin: Readable): Promise<string> =>
  file === '-' ? readBounded(stdin, MAX_BATCH_BYTES, 'the batch on stdin') : readBounded(file, MAX_BATCH_BYTES, `--batch ${file}`);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// Polls until the batch finishes, moving a bar on stderr when a person is watching it.
async function follow(api: ApiClient, id: string): Promise<Progress> {
  const bar = process.stderr.isTTY
    ? new SingleBar(
        {
          stream: process.stderr,
          format: 'batch [{bar}] {value}/{total} · {failed} failed · {cps} calls/s · p50 {p50} · {elapsed}',
          hideCursor: true,
          clearOnComplete: true,
          barsize: 30,
        },
        Presets.shades_classic,
      )
    : undefined;
  let p = (await api.send('GET', `/batch/${id}`, ProgressSchema)).data;
  const payload = (x: Progress) => ({
    failed: x.failed,
    cps: x.callsPerSecond,
    p50: duration(x.p50 ?? undefined) || '-',
    elapsed: duration(x.elapsedMs),
  });
  bar?.start(p.size, p.done + p.failed, payload(p));
  try {
    while (p.state !== 'finished') {
      await sleep(POLL_MS);
      p = (await api.send('GET', `/batch/${id}`, ProgressSchema)).data;
      bar?.update(p.done + p.failed, payload(p));
    }
  } finally {
    bar?.stop();
  }
  return p;
}

async function allResults(api: ApiClient, p: Progress): Promise<Item[]> {
  const items: Item[] = [];
  while (items.length < p.size) {
    const page = (await api.send('GET', `/batch/${p.batchId}/results`, ResultsSchema, { query: { offset: items.length, limit: 1000 } }))
      .data;
    if (page.items.length === 0) break;
    items.push(...page.items);
  }
  return items;
}

// The summary, the failed items, and the exit code: 0 all done, 3 some ERROR, 4 only TIMEOUTs among failures.
async function report(deps: Deps, api: ApiClient, p: Progress, json: boolean): Promise<number> {
  const { out } = deps;
  const items = json || p.failed > 0 ? await allResults(api, p) : [];
  const failed = items.filter((i) => i.status === 'ERROR' || i.status === 'TIMEOUT');
  if (json) out.json({ batch: p, results: items });
  else {
    out.table(
      ['BATCH', 'FUNCTION', 'ITEMS', 'DONE', 'FAILED', 'P50', 'P95', 'CALLS/S', 'ELAPSED'],
      [
        [
          p.batchId,
          `${p.funcName}@${p.version}`,
          String(p.size),
          String(p.done),
          String(p.failed),
          duration(p.p50 ?? undefined),
          duration(p.p95 ?? undefined),
          String(p.callsPerSecond),
          duration(p.elapsedMs),
        ],
      ],
    );
    if (failed.length > 0) {
      out.print('');
      out.table(
        ['ITEM', 'CALL', 'STATUS', 'ERROR'],
        failed.slice(0, FAILED_SHOWN).map((i) => [String(i.index), i.callNum ? String(i.callNum) : '-', i.status, preview(i.error, 70)]),
      );
      if (failed.length > FAILED_SHOWN) out.note(`… and ${failed.length - FAILED_SHOWN} more failed: zfaas batch ${p.batchId} --json`);
    }
  }
  if (p.failed === 0) return EXIT.OK;
  return failed.length > 0 && failed.every((i) => i.status === 'TIMEOUT') ? EXIT.CALL_TIMEOUT : EXIT.CALL_ERROR;
}

/** invoke TARGET --batch FILE */
export async function runBatch(deps: Deps, cmd: Command, target: string, file: string, json: boolean): Promise<number> {
  const items = parseBatch(await readSource(file, deps.stdin), file === '-' ? 'stdin' : file);
  if (items.length === 0) throw new UsageError(`${file === '-' ? 'stdin' : file} holds no params: give a JSON array or JSON lines`);
  const api = await deps.client(cmd);
  const b = (await api.send('POST', `/batch/${encodeURIComponent(target)}`, AcceptedSchema, { json: items })).data;
  deps.out.note(
    `batch ${b.batchId}: ${b.size} calls of ${b.funcName}@${b.version} (Ctrl-C stops watching, not the batch: zfaas batch ${b.batchId})`,
  );
  return report(deps, api, await follow(api, b.batchId), json);
}

export function batchCommand(p: Command, deps: Deps): void {
  examples(
    clientCommand(p, 'batch <batchId>', "show a batch's progress and results (started with: zfaas invoke NAME --batch FILE)")
      .option('-w, --wait', 'follow it until it finishes, with a progress bar')
      .option('--json', 'print the progress and every result as JSON'),
    ['zfaas batch 3f2a9c01b7de', 'zfaas batch 3f2a9c01b7de --wait', 'zfaas batch 3f2a9c01b7de --json | jq ".results[].result"'],
  ).action(
    act(deps, async (id: string, o: { wait?: boolean; json?: boolean }, cmd: Command) => {
      if (!/^[a-f0-9]{1,64}$/.test(id)) throw new UsageError(`invalid batch id "${id}"`);
      const api = await deps.client(cmd);
      const p = o.wait ? await follow(api, id) : (await api.send('GET', `/batch/${id}`, ProgressSchema)).data;
      const code = await report(deps, api, p, o.json === true);
      if (p.state !== 'finished') {
        deps.out.note(`batch ${id} is still running (${p.pending} pending): zfaas batch ${id} --wait`);
        return EXIT.CALL_PENDING;
      }
      return code;
    }),
  );
}
