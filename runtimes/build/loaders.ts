// Builds each runtime's loader, the one file its image carries (runtimes/LANG/loader.EXT), from its small
// modules (runtimes/LANG/src, in the order below) and the protocol's constants and patterns, generated
// from protocol/loader.ts so that the node and every loader check the same things. It also writes those
// constants as runtimes/loader-protocol.json, for the author of a loader in another language.
//   npm run loaders         write what is out of date
//   (loaders.test.ts fails while a written file differs from what this would write)
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CANCELLED,
  FORMATS,
  LINE_DIR,
  LINE_ENV,
  LINE_FILE,
  LOADER_PROTOCOL,
  LOG_LIMIT,
  MAX_LINE,
  PATTERNS,
  RESULT_LIMIT,
  SECRETS_DIR,
  STREAM_CHUNK_LIMIT,
  STREAM_LIMIT,
} from '../../protocol/loader.js';

const HERE = dirname(fileURLToPath(import.meta.url));
// From runtimes/build or, compiled, from dist/runtimes/build.
export const RUNTIMES = HERE.split(/[\\/]/).includes('dist') ? resolve(HERE, '..', '..', '..', 'runtimes') : resolve(HERE, '..');

/** What every loader must agree on with the node, as one JSON document. */
export function protocolConstants() {
  return {
    version: LOADER_PROTOCOL,
    resultLimit: RESULT_LIMIT,
    logLimit: LOG_LIMIT,
    streamChunkLimit: STREAM_CHUNK_LIMIT,
    streamLimit: STREAM_LIMIT,
    maxLine: MAX_LINE,
    lineEnv: LINE_ENV,
    lineDir: LINE_DIR,
    lineFile: LINE_FILE,
    secretsDir: SECRETS_DIR,
    formats: [...FORMATS],
    patterns: { ...PATTERNS },
  };
}

// The loaders' own names for what protocolConstants() holds. A pattern matches a whole string: JavaScript
// anchors it with ^ and $, Python (which calls .match) with \Z.
function jsConstants(version: number = LOADER_PROTOCOL): string {
  const c = { ...protocolConstants(), version };
  const re = (p: string): string => `new RegExp(${JSON.stringify(`^(?:${p})$`)})`;
  return [
    `const PROTOCOL = ${c.version};`,
    `const LOG_LIMIT = ${c.logLimit};`,
    `const RESULT_LIMIT = ${c.resultLimit};`,
    `const STREAM_CHUNK_LIMIT = ${c.streamChunkLimit};`,
    `const STREAM_LIMIT = ${c.streamLimit};`,
    `const CANCELLED = ${JSON.stringify(CANCELLED)}; // a cancelled call's error`,
    `const LINE_ENV = ${JSON.stringify(c.lineEnv)}; // the node's unix socket, when it has one`,
    `const FORMATS = ${JSON.stringify(c.formats)};`,
    `const ENV_NAME = ${re(c.patterns.envName)};`,
    `const TOKEN = ${re(c.patterns.headerToken)};`,
    `const SECRET_NAME = ${re(c.patterns.secretName)};`,
    `const BASE64 = ${re(c.patterns.base64)};`,
  ].join('\n');
}

function pyConstants(version: number): string {
  const c = { ...protocolConstants(), version };
  // A JSON string is a Python string literal too (the same escapes for what these hold).
  const re = (p: string): string => `re.compile(${JSON.stringify(`(?:${p})\\Z`)})`;
  return [
    `PROTOCOL = ${c.version}`,
    `LOG_LIMIT = ${c.logLimit}`,
    `RESULT_LIMIT = ${c.resultLimit}`,
    `STREAM_CHUNK_LIMIT = ${c.streamChunkLimit}`,
    `STREAM_LIMIT = ${c.streamLimit}`,
    `CANCELLED = ${JSON.stringify(CANCELLED)}  # a cancelled call's error`,
    `LINE_ENV = ${JSON.stringify(c.lineEnv)}  # the node's unix socket, when it has one`,
    `FORMATS = (${c.formats.map((f) => JSON.stringify(f)).join(', ')})`,
    `ENV_NAME = ${re(c.patterns.envName)}`,
    `TOKEN = ${re(c.patterns.headerToken)}`,
    `SECRET_NAME = ${re(c.patterns.secretName)}`,
    `BASE64 = ${re(c.patterns.base64)}`,
  ].join('\n');
}

interface Loader {
  out: string; // below runtimes/
  src: string; // below runtimes/
  comment: string;
  constants: () => string;
  // The modules in the order they are joined; PROTOCOL marks where the generated constants go.
  modules: string[];
}

const PROTOCOL = '<protocol>';

export const LOADERS: Record<string, Loader> = {
  node: {
    out: 'node/loader.js',
    src: 'node/src',
    comment: '//',
    constants: jsConstants,
    modules: [
      'head.js',
      PROTOCOL,
      'base.js',
      'capture.js',
      'framework.js',
      'load.js',
      'call.js',
      'formats/http.js',
      'formats/lambda.js',
      'formats/openwhisk.js',
      'formats/express.js',
      'formats/cloudevent.js',
      'formats/openfaas.js',
      'formats/runner.js',
      'stream.js',
      'concurrent.js',
      'warm.js',
      'secrets.js',
      'once.js',
      'main.js',
    ],
  },
  // The provided runtime's loader serves the Lambda Runtime API to a bootstrap, with the node loader's
  // protocol, capture and call modules.
  provided: {
    out: 'provided/loader.js',
    src: '.',
    comment: '//',
    constants: () => jsConstants(2), // says version 2: the node gives it one call at a time
    modules: [
      'provided/src/head.js',
      PROTOCOL,
      'node/src/base.js',
      'node/src/capture.js',
      'node/src/call.js',
      'node/src/formats/http.js',
      'node/src/formats/lambda.js',
      'provided/src/runtime-api.js',
      'node/src/stream.js',
      'node/src/concurrent.js',
      'node/src/warm.js',
      'node/src/secrets.js',
      'node/src/once.js',
      'node/src/main.js',
    ],
  },
  python: {
    out: 'python/loader.py',
    src: 'python/src',
    comment: '#',
    constants: () => pyConstants(LOADER_PROTOCOL),
    modules: [
      'head.py',
      PROTOCOL,
      'base.py',
      'capture.py',
      'context.py',
      'framework.py',
      'load.py',
      'formats/http.py',
      'formats/lambda_.py',
      'formats/openwhisk.py',
      'formats/openfaas.py',
      'formats/gcf.py',
      'formats/runner.py',
      'stream.py',
      'concurrent.py',
      'warm.py',
      'secrets.py',
      'once.py',
      'main.py',
    ],
  },
};

/** The built loader's text: its modules joined, each after a line naming it (errors point into the file). */
export async function buildLoader(l: Loader): Promise<string> {
  const parts: string[] = [];
  for (const m of l.modules) {
    if (m === PROTOCOL) {
      parts.push(`${l.comment} ---- generated from protocol/loader.ts by runtimes/build/loaders.ts: do not edit\n${l.constants()}\n`);
      continue;
    }
    const text = await readFile(join(RUNTIMES, l.src, m), 'utf8');
    parts.push(m === l.modules[0] ? text : `${l.comment} ---- ${l.src}/${m}\n${text}`);
  }
  return parts.join('\n');
}

export const protocolJson = (): string => JSON.stringify(protocolConstants(), null, 2) + '\n';

/** Every generated file: its path below runtimes/ and what it must hold. */
export async function generated(): Promise<Array<{ path: string; text: string }>> {
  const files = [{ path: 'loader-protocol.json', text: protocolJson() }];
  for (const l of Object.values(LOADERS)) files.push({ path: l.out, text: await buildLoader(l) });
  return files;
}

async function main(): Promise<void> {
  for (const f of await generated()) {
    const file = join(RUNTIMES, f.path);
    const old = await readFile(file, 'utf8').catch(() => '');
    if (old === f.text) continue;
    await writeFile(file, f.text);
    console.log(`wrote runtimes/${f.path}`);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
