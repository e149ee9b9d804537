// The documentation kept true to the code, without Docker: the README stays a front door; every relative
// link of the README and of docs/ leads to a file (and a heading, when it names one); docs/rest-api.md's
// route index is what api/openapi.json says now, and every route its tables name is in the document; the
// CLI page names every command the CLI has; the loader protocol page says the version and limits of
// protocol/loader.ts. (test/docs.e2e.test.ts runs the README's examples against `zfaas up`.)
import { Command } from 'commander';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { registerBackupCommands } from '../cli/backup.js';
import { registerClientCommands } from '../cli/commands/index.js';
import { LOADER_PROTOCOL, LOG_LIMIT, OLDEST_LOADER_PROTOCOL, RESULT_LIMIT, STREAM_CHUNK_LIMIT, STREAM_LIMIT } from '../protocol/loader.js';

const ROOT = resolve(import.meta.dirname, '..');
const read = (file: string): Promise<string> => readFile(join(ROOT, file), 'utf8');
const pages = async (): Promise<string[]> => (await readdir(join(ROOT, 'docs'))).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`);

// GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens.
const anchor = (heading: string): string =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');

const headings = (md: string): Set<string> =>
  new Set(
    md
      .replace(/```[^]*?```/g, '')
      .split('\n')
      .filter((l) => /^#{1,6} /.test(l))
      .map((l) => anchor(l.replace(/^#+ /, ''))),
  );

interface OpenApi {
  paths: Record<string, Record<string, { summary?: string }>>;
}
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];

async function operations(): Promise<Array<{ method: string; path: string; summary: string }>> {
  const doc = JSON.parse(await read('api/openapi.json')) as OpenApi;
  const ops: Array<{ method: string; path: string; summary: string }> = [];
  for (const [path, item] of Object.entries(doc.paths))
    for (const m of METHODS)
      if (item[m]) ops.push({ method: m.toUpperCase(), path: path.replace(/\{(\w+)\}/g, ':$1'), summary: item[m].summary ?? '' });
  return ops;
}

async function routeIndex(): Promise<string> {
  const rows = (await operations()).map((o) => `| \`${o.method} ${o.path}\` | ${o.summary.replace(/\|/g, '\\|')} |`);
  return ['| route | what it does |', '| --- | --- |', ...rows].join('\n');
}

const START = '<!-- routes:start -->';
const END = '<!-- routes:end -->';

describe('the README', () => {
  it('is a front door: at most about 250 lines, linking every page of docs/', async () => {
    const readme = await read('README.md');
    expect(readme.split('\n').length).toBeLessThanOrEqual(260);
    for (const page of await pages()) expect(readme, `README links ${page}`).toContain(`(${page})`);
  });
});

describe('links', () => {
  it('lead to a file, and to a heading there when they name one', async () => {
    const broken: string[] = [];
    for (const file of ['README.md', ...(await pages())]) {
      const md = (await read(file)).replace(/```[^]*?```/g, '');
      for (const [, target] of md.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target!)) continue;
        const [path, hash] = target!.split('#');
        const to = path ? join(dirname(file), path) : file;
        const text = await read(to).catch(() => undefined);
        if (text === undefined) broken.push(`${file}: ${target} (no file)`);
        else if (hash && to.endsWith('.md') && !headings(text).has(hash)) broken.push(`${file}: ${target} (no heading)`);
      }
    }
    expect(broken).toEqual([]);
  });
});

describe('docs/rest-api.md', () => {
  it('holds the route index generated from api/openapi.json as it is now', async () => {
    const md = await read('docs/rest-api.md');
    const i = md.indexOf(START);
    const j = md.indexOf(END);
    expect(i).toBeGreaterThan(0);
    const now = md.slice(i + START.length, j).trim();
    const want = await routeIndex();
    if (now !== want && process.env.UPDATE_DOCS === '1') {
      await writeFile(join(ROOT, 'docs/rest-api.md'), `${md.slice(0, i + START.length)}\n${want}\n${md.slice(j)}`);
      return;
    }
    expect(now, 'run UPDATE_DOCS=1 npx vitest run docs/docs.test.ts').toBe(want);
  });

  it('names in its tables only routes api/openapi.json has', async () => {
    const md = await read('docs/rest-api.md');
    const known = new Set((await operations()).map((o) => `${o.method} ${o.path}`));
    const named = [...md.matchAll(/^\| `((?:GET|POST|PUT|DELETE|PATCH) \/[^`]*)`(?:, `((?:GET|POST|PUT|DELETE|PATCH) \/[^`]*)`)?/gm)]
      .flatMap((m) => [m[1], m[2]])
      .filter((r): r is string => r !== undefined);
    expect(named.length).toBeGreaterThan(20);
    expect(named.filter((r) => !known.has(r))).toEqual([]);
  });
});

describe('docs/cli.md', () => {
  it('names every command of the CLI', async () => {
    const p = new Command('zfaas');
    registerClientCommands(p);
    registerBackupCommands(p);
    const services = [...(await read('cli/main.ts')).matchAll(/p\.command\('([a-z-]+)'\)/g)].map((m) => m[1]!);
    const commands = [...p.commands.map((c) => c.name()), ...services];
    expect(commands).toEqual(expect.arrayContaining(['invoke', 'deploy', 'up', 'backup']));
    const md = await read('docs/cli.md');
    expect(commands.filter((c) => !md.includes(`\`${c}`) && !md.includes(`zfaas ${c}`))).toEqual([]);
  });
});

describe('docs/loader-protocol.md', () => {
  it('says the versions and the limits protocol/loader.ts has', async () => {
    const md = await read('docs/loader-protocol.md');
    expect(md).toContain(`{"op":"hello","v":${LOADER_PROTOCOL},"pid":N}`);
    expect(md).toContain(`speaks versions ${OLDEST_LOADER_PROTOCOL}\nto ${LOADER_PROTOCOL}`);
    expect(md).toContain(`\`STREAM_CHUNK_LIMIT\`, ${STREAM_CHUNK_LIMIT / 1024} KiB`);
    expect(md).toContain(`\`STREAM_LIMIT\` (${STREAM_LIMIT / 2 ** 20} MiB)`);
    expect(md).toContain(`${RESULT_LIMIT.toLocaleString('en-US')} characters`);
    expect(md).toContain(`the last ${LOG_LIMIT / 1024} KiB`);
  });

  it('lists every module each loader is built from', async () => {
    const md = await read('docs/loader-protocol.md');
    const { LOADERS } = await import('../runtimes/build/loaders.js');
    for (const l of Object.values(LOADERS)) for (const m of l.modules) if (!m.startsWith('<')) expect(md, m).toContain(`\`${m}\``);
  });
});
