// The params of `zfaas invoke`: --params JSON, --file F, key=value pairs, or stdin ("-", or implicitly
// when stdin is a pipe or file and nothing else was given). Bad input is a usage error, never sent.
import type { Readable } from 'node:stream';
import { jsonDepth, MAX_JSON_DEPTH } from '../../common/json-depth.js';
import { UsageError, errText } from './errors.js';
import { readBounded } from './read-bounded.js';

// The API's limit on a JSON request body.
export const MAX_PARAMS_BYTES = 1024 * 1024;

export interface ParamSources {
  params?: string;
  file?: string;
  /** Positional words: key=value pairs, or "-" for stdin. */
  words: string[];
  stdin: Readable & { isTTY?: boolean };
}

function parseJson(text: string, what: string): unknown {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${what} is not valid JSON: ${errText(e)}`);
  }
  if (jsonDepth(v, MAX_JSON_DEPTH) > MAX_JSON_DEPTH)
    throw new UsageError(`${what} nests more than ${MAX_JSON_DEPTH} levels deep, more than the API takes`);
  return v;
}

/** "n=3" -> ["n", 3]; "name=ana" -> ["name", "ana"]; values are JSON when they parse as JSON. */
export function parsePair(word: string): [string, unknown] {
  const eq = word.indexOf('=');
  if (eq <= 0) throw new UsageError(`expected key=value, got "${word}" (use --params for a JSON document)`);
  const key = word.slice(0, eq);
  const raw = word.slice(eq + 1);
  try {
    return [key, JSON.parse(raw)];
  } catch {
    return [key, raw];
  }
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export async function readParams(s: ParamSources): Promise<unknown> {
  const dash = s.words.filter((w) => w === '-').length;
  const pairs = s.words.filter((w) => w !== '-').map(parsePair);
  const sources = [s.params !== undefined, s.file !== undefined, dash > 0].filter(Boolean).length;
  if (sources > 1 || dash > 1)
    throw new UsageError('give the params one way: --params JSON, --file FILE or "-" for stdin (key=value pairs may be added to any)');

  let base: unknown = undefined;
  if (s.params !== undefined) base = parseJson(s.params, '--params');
  else if (s.file === '-' || dash) base = await fromStdin(s.stdin, true);
  else if (s.file !== undefined) base = parseJson(await readBounded(s.file, MAX_PARAMS_BYTES, `--file ${s.file}`), `--file ${s.file}`);
  else if (pairs.length === 0 && !s.stdin.isTTY) base = await fromStdin(s.stdin, false);

  if (pairs.length === 0) return base ?? {};
  if (base !== undefined && !isPlainObject(base)) throw new UsageError('key=value pairs can only be added to a JSON object');
  return { ...(base as Record<string, unknown> | undefined), ...Object.fromEntries(pairs) };
}

async function fromStdin(stdin: Readable, explicit: boolean): Promise<unknown> {
  const text = await readBounded(stdin, MAX_PARAMS_BYTES, 'the params on stdin');
  // Nothing piped in (e.g. </dev/null) means no params, unless the user asked for stdin by name.
  if (text.trim() === '') return explicit ? {} : undefined;
  return parseJson(text, 'the params on stdin');
}
