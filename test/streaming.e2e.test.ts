// Streamed answers, against the real services: functions that write their web answer as they go (Lambda's
// awslambda.streamifyResponse, gcf's res.write, a Python generator) reach their caller piece by piece, the
// first before the function ends; the body is whole; GET /call/N shows DONE with the size and the first
// KiB; Server-Sent Events arrive as events; a caller that leaves after the first piece leaves the call
// cancelled. The functions run on the built-in node and python runtimes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packFiles } from './helpers/archives.js';
import { http, startUp, upload, waitFor, type Platform } from './helpers/platform.js';

const TOKEN = 'stream-test-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };
let p: Platform;

const GAP_MS = 400; // between a function's writes

// Each function writes three pieces GAP_MS apart, saying when it wrote each.
const FUNCTIONS: Record<string, { runtime: string; format: string; handler: string; files: Record<string, string> }> = {
  lam: {
    runtime: 'node',
    format: 'lambda',
    handler: 'index.handler',
    files: {
      'index.js': `exports.handler = awslambda.streamifyResponse(async (event, responseStream) => {
  const out = awslambda.HttpResponseStream.from(responseStream, { statusCode: 200, headers: { 'content-type': 'text/plain' } });
  for (let i = 0; i < 3; i++) {
    if (i) await new Promise((r) => setTimeout(r, ${GAP_MS}));
    out.write('part ' + i + '\\n');
  }
  out.end();
});
`,
    },
  },
  gcf: {
    runtime: 'node',
    format: 'gcf',
    handler: 'index.handler',
    files: {
      'index.js': `exports.handler = async (req, res) => {
  res.set('content-type', 'text/plain');
  for (let i = 0; i < 3; i++) {
    if (i) await new Promise((r) => setTimeout(r, ${GAP_MS}));
    res.write('part ' + i + '\\n');
  }
  res.end();
};
`,
    },
  },
  py: {
    runtime: 'python',
    format: 'gcf',
    handler: 'main.handler',
    files: {
      'main.py': `import time


def handler(request):
    def parts():
        for i in range(3):
            if i:
                time.sleep(${GAP_MS / 1000})
            yield "part %d\\n" % i
    return parts(), 200, {"content-type": "text/plain"}
`,
    },
  },
  sse: {
    runtime: 'node',
    format: 'gcf',
    handler: 'index.handler',
    files: {
      'index.js': `exports.handler = async (req, res) => {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  for (let i = 0; i < 3; i++) {
    if (i) await new Promise((r) => setTimeout(r, ${GAP_MS}));
    res.write('id: ' + i + '\\nevent: token\\ndata: {"token":"t' + i + '"}\\n\\n');
  }
  res.end();
};
`,
    },
  },
  broken: {
    runtime: 'node',
    format: 'gcf',
    handler: 'index.handler',
    files: {
      'index.js': `exports.handler = async (req, res) => {
  res.write('begun\\n');
  await new Promise((r) => setTimeout(r, 200));
  throw new Error('broke mid-answer');
};
`,
    },
  },
  slow: {
    runtime: 'node',
    format: 'gcf',
    handler: 'index.handler',
    files: {
      'index.js': `exports.handler = async (req, res) => {
  res.set('content-type', 'text/plain');
  for (let i = 0; i < 60; i++) {
    res.write('tick ' + i + '\\n');
    await new Promise((r) => setTimeout(r, 1000));
  }
  res.end();
};
`,
    },
  },
};

interface Streamed {
  status: number;
  headers: Headers;
  callNum: number;
  pieces: { at: number; text: string }[]; // as they arrived, with when
  body: string;
}

// Reads a web answer as it arrives; `stopAfter`: leaves after that many pieces.
async function readStreamed(path: string, stopAfter?: number): Promise<Streamed> {
  const abort = new AbortController();
  const r = await fetch(`${p.api}${path}`, { headers: auth, signal: abort.signal });
  const pieces: Streamed['pieces'] = [];
  const decoder = new TextDecoder();
  const reader = r.body!.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    pieces.push({ at: performance.now(), text: decoder.decode(value, { stream: true }) });
    if (stopAfter !== undefined && pieces.length >= stopAfter) {
      abort.abort();
      break;
    }
  }
  return {
    status: r.status,
    headers: r.headers,
    callNum: Number(r.headers.get('x-zfaas-call')),
    pieces,
    body: pieces.map((x) => x.text).join(''),
  };
}

interface CallRecord {
  status: string;
  result: string;
  cancelled?: boolean;
  response?: { status: number; bytes: number; streamed?: boolean };
}

// GET /call/N once the call reached a final state.
async function ended(callNum: number): Promise<CallRecord> {
  return waitFor(
    `call ${callNum} to end`,
    async () => {
      const r = await http<CallRecord>('GET', `${p.api}/call/${callNum}`, undefined, auth);
      return ['DONE', 'ERROR', 'TIMEOUT'].includes(r.body.status) ? r.body : undefined;
    },
    20_000,
  );
}

// Server-Sent Events as the event-stream format defines them: blocks split by a blank line, fields by ":".
function parseEvents(text: string): { id?: string; event?: string; data: string }[] {
  return text
    .split(/\r?\n\r?\n/)
    .filter((b) => b.trim())
    .map((block) => {
      const e: { id?: string; event?: string; data: string } = { data: '' };
      for (const line of block.split(/\r?\n/)) {
        const at = line.indexOf(':');
        const field = at < 0 ? line : line.slice(0, at);
        const value = at < 0 ? '' : line.slice(at + 1).replace(/^ /, '');
        if (field === 'data') e.data = e.data ? `${e.data}\n${value}` : value;
        else if (field === 'id' || field === 'event') e[field] = value;
      }
      return e;
    });
}

beforeAll(async () => {
  p = await startUp(['--miniworkers', '2'], { ZFAAS_TOKEN: TOKEN });
  for (const [name, f] of Object.entries(FUNCTIONS)) {
    const r = await upload(
      `${p.api}/registerFunction/${f.runtime}/${name}`,
      await packFiles(f.files),
      `${name}.tar.gz`,
      { format: f.format, handler: f.handler },
      auth,
    );
    expect(r.status, JSON.stringify(r.body)).toBe(201);
  }
}, 300_000);

afterAll(async () => {
  await p?.stop();
});

describe('a streamed answer reaches its caller as the function writes it', () => {
  for (const [form, name] of [
    ['Node, awslambda.streamifyResponse', 'lam'],
    ['Node, gcf res.write', 'gcf'],
    ['Python, a generator', 'py'],
  ] as const) {
    it(`${form}: the first piece arrives well before the last, the body is whole, and the record says DONE with its size`, async () => {
      const s = await readStreamed(`/function/${name}/`);
      expect(s.status, s.body).toBe(200);
      expect(s.headers.get('content-type')).toMatch(/^text\/plain/);
      expect(s.body).toBe('part 0\npart 1\npart 2\n');
      // The function waits GAP_MS between writes: had the answer been held until the end, everything
      // would have come in one piece, at once.
      expect(s.pieces.length).toBeGreaterThanOrEqual(3);
      expect(s.pieces[0]!.text).toBe('part 0\n');
      expect(s.pieces.at(-1)!.at - s.pieces[0]!.at).toBeGreaterThanOrEqual(1.5 * GAP_MS);
      const call = await ended(s.callNum);
      expect(call).toMatchObject({ status: 'DONE', result: 'part 0\npart 1\npart 2\n' });
      expect(call.response).toMatchObject({ status: 200, bytes: 21, streamed: true });
    });
  }

  it('keeps only the first KiB of a longer streamed body in the record, with its whole size', async () => {
    // The SSE function's body is short; the gcf one called often enough is not needed: a long one is made here.
    const files = {
      'index.js': `exports.handler = (req, res) => { res.set('content-type', 'text/plain'); res.write('a'.repeat(1000)); res.write('b'.repeat(1000)); res.end('c'.repeat(1000)); };\n`,
    };
    const up = await upload(
      `${p.api}/registerFunction/node/long`,
      await packFiles(files),
      'long.tar.gz',
      { format: 'gcf', handler: 'index.handler' },
      auth,
    );
    expect(up.status).toBe(201);
    const s = await readStreamed('/function/long/');
    expect(s.body).toBe('a'.repeat(1000) + 'b'.repeat(1000) + 'c'.repeat(1000));
    const call = await ended(s.callNum);
    expect(call.status).toBe('DONE');
    expect(call.result).toBe('a'.repeat(1000) + 'b'.repeat(24));
    expect(call.response).toMatchObject({ bytes: 3000, streamed: true });
  });

  it('Server-Sent Events: text/event-stream arrives event by event, uncompressed and uncached', async () => {
    const s = await readStreamed('/function/sse/');
    expect(s.status).toBe(200);
    expect(s.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(s.headers.get('cache-control')).toBe('no-cache');
    expect(s.headers.get('content-encoding')).toBeNull();
    expect(parseEvents(s.pieces[0]!.text)).toEqual([{ id: '0', event: 'token', data: '{"token":"t0"}' }]);
    const events = parseEvents(s.body);
    expect(events.map((e) => JSON.parse(e.data) as unknown)).toEqual([{ token: 't0' }, { token: 't1' }, { token: 't2' }]);
    expect(s.pieces.at(-1)!.at - s.pieces[0]!.at).toBeGreaterThanOrEqual(1.5 * GAP_MS);
  });

  it('a function that fails after its first piece breaks its answer off: the caller never sees a whole one', async () => {
    const r = await fetch(`${p.api}/function/broken/`, { headers: auth });
    expect(r.status).toBe(200); // the head went with the first piece
    const callNum = Number(r.headers.get('x-zfaas-call'));
    await expect(r.text()).rejects.toThrow();
    const call = await ended(callNum);
    expect(call.status).toBe('ERROR');
    expect((call as { error?: string }).error).toContain('broke mid-answer');
  });

  it('a caller that leaves after the first piece cancels the call: it ends cancelled, not DONE and not running', async () => {
    const s = await readStreamed('/function/slow/', 1);
    expect(s.body).toBe('tick 0\n');
    const call = await ended(s.callNum);
    expect(call).toMatchObject({ status: 'ERROR', cancelled: true });
  });
});
