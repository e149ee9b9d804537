// Warm mode: the loader protocol over the node's unix socket or stdin/stdout, one request at a time (or, after
// a load with concurrency > 1, several calls at once: concurrent.js).
// A request's `env`: an object of strings named like environment variables (no NUL: setenv cannot hold it).
function isEnv(env) {
  if (env === null || typeof env !== 'object' || Array.isArray(env)) return false;
  for (const k in env) {
    const v = env[k];
    if (typeof v !== 'string' || !ENV_NAME.test(k) || v.includes('\0')) return false;
  }
  return true;
}

// A call's `http`, as protocol/loader.ts has HttpRequestSchema.
function isHttp(h) {
  if (h === null || typeof h !== 'object' || Array.isArray(h)) return false;
  for (const k of ['method', 'path', 'query', 'body', 'sourceIp']) if (typeof h[k] !== 'string') return false;
  const hd = h.headers;
  if (hd === null || typeof hd !== 'object' || Array.isArray(hd)) return false;
  for (const k in hd) if (typeof hd[k] !== 'string') return false;
  return true;
}

// Calls onLine with each line of the stream (without its newline; a last line without one counts too),
// then onEnd once, at its end.
function readLines(stream, onLine, onEnd) {
  let parts = [];
  let ended = false;
  stream.setEncoding('utf8');
  stream.on('data', (chunk) => {
    let from = 0;
    let nl;
    while ((nl = chunk.indexOf('\n', from)) !== -1) {
      let line = chunk.slice(from, nl);
      if (parts.length) {
        parts.push(line);
        line = parts.join('');
        parts = [];
      }
      onLine(line);
      from = nl + 1;
    }
    if (from < chunk.length) parts.push(from ? chunk.slice(from) : chunk);
  });
  const end = () => {
    if (ended) return;
    ended = true;
    if (parts.length) onLine(parts.join(''));
    parts = [];
    onEnd();
  };
  stream.on('end', end);
  stream.on('error', end);
}

// Dials the node's unix socket, retrying for CONNECT_FOR_MS; cannot: a line on stderr and exit 1.
function dial(file, then) {
  const until = Date.now() + CONNECT_FOR_MS;
  let wait = 10;
  const attempt = () => {
    const sock = net.createConnection({ path: file, allowHalfOpen: true });
    const failed = (e) => {
      sock.destroy();
      if (Date.now() + wait <= until) {
        setTimeout(attempt, wait);
        wait = Math.min(2 * wait, 250);
        return;
      }
      realStderrWrite(`zfaas loader: cannot connect to ${LINE_ENV}=${file} (tried for ${CONNECT_FOR_MS / 1000} s): ${e.message}\n`, () =>
        process.exit(1),
      );
    };
    sock.once('error', failed);
    sock.once('connect', () => {
      sock.removeListener('error', failed);
      then(sock);
    });
  };
  attempt();
}

function serve() {
  installEnvView(); // a call's variables are a view over the process's (concurrent.js)
  const line = process.env[LINE_ENV];
  if (!line) {
    // stdin/stdout; stdout pipes and files are written synchronously, so exiting at the end loses nothing
    speak(
      process.stdin,
      (msg) => realStdoutWrite(JSON.stringify(msg) + '\n'),
      () => process.exit(0),
    );
    return;
  }
  delete process.env[LINE_ENV]; // the function sees the variables a cold run sees
  dial(line, (sock) => {
    sock.on('error', () => process.exit(0)); // the node is gone: nobody to answer
    sock.on('close', () => process.exit(0));
    speak(
      sock,
      (msg) => sock.write(JSON.stringify(msg) + '\n'),
      () => sock.end(), // the node hung up and its last request is answered: hang up too ('close' exits)
    );
  });
}

const ENV_EXPECTED = 'an object of strings named [A-Za-z_][A-Za-z0-9_]*';
const HTTP_EXPECTED = 'an object {method, path, query, headers (an object of strings), body (base64), sourceIp} of strings';

// A session holds what the requests share: `send`, `refuse` (the answer to what cannot be read) and the
// runner of the loaded function (makeRunner's; null until a load succeeds).

// A call: the function run with the call's own env and params, its output captured into the reply.
async function answerCall(s, msg) {
  const t0 = performance.now();
  const id = msg.id;
  if (!Number.isInteger(id) || id < 1) return s.refuse('call needs id: a positive integer', id);
  const env = msg.env === undefined ? {} : msg.env;
  if (!isEnv(env)) return s.refuse(`call needs env: ${ENV_EXPECTED}`, id);
  if (!s.runner) return s.send({ op: 'result', id, ok: false, error: 'no function loaded', logs: '', took: tookSince(t0) });
  // a json function never sees `http` (the node made its params of it)
  const http = s.runner.web && msg.http !== undefined ? msg.http : null;
  if (http && !isHttp(http)) return s.refuse(`call needs http: ${HTTP_EXPECTED}`, id);
  const params = msg.params === undefined ? null : msg.params;
  if (s.concurrency > 1) return runConcurrent(s, id, env, params, http, t0); // concurrent.js
  enterAlone(env, params); // the call's variables, in process.env's view (concurrent.js)
  startCapture();
  const st = http ? openStream(s, id) : null; // a web call may stream its answer (stream.js)
  let reply;
  try {
    reply = http ? webReply(id, await s.runner.web(http, id)) : valueReply(id, await s.runner.direct(params, id));
  } catch (e) {
    reply = { op: 'result', id, ok: false, error: errorText(e) };
    if (e instanceof ResponseError) reply.fault = 'response';
  }
  if (st) reply = closeStream(st, reply);
  reply.logs = stopCapture();
  leaveAlone();
  const stray = strayProcesses();
  if (stray > 0) reply.stray = stray;
  reply.took = tookSince(t0);
  s.send(reply);
}

// A result's `took`: whole microseconds since the call was read (the node compares it with its round trip).
function tookSince(t0) {
  return Math.max(0, Math.round((performance.now() - t0) * 1000));
}

function answerSecrets(s, msg) {
  const bad = secretsProblem(msg);
  if (bad) return s.refuse(`secrets needs ${bad}`);
  try {
    writeSecrets(msg.dir, msg.files, msg.keep);
    s.send({ op: 'secretsSet', ok: true });
  } catch (e) {
    // an errno message names a file, never a value
    s.send({ op: 'secretsSet', ok: false, error: String((e && e.message) || e).slice(0, 1000) });
  }
}

async function answerLoad(s, msg) {
  if (typeof msg.dir !== 'string') return s.refuse('load needs dir: a string');
  if (msg.handler !== null && typeof msg.handler !== 'string') return s.refuse('load needs handler: a string or null');
  if (!isEnv(msg.env)) return s.refuse(`load needs env: ${ENV_EXPECTED}`);
  const format = msg.format === undefined || msg.format === null ? 'auto' : msg.format;
  if (!FORMATS.includes(format)) return s.refuse(`load needs format: one of ${FORMATS.join(', ')}`);
  const n = msg.concurrency === undefined || msg.concurrency === null ? 1 : msg.concurrency;
  if (!Number.isInteger(n) || n < 1) return s.refuse('load needs concurrency: a positive integer');
  s.concurrency = n; // > 1: several calls at once (concurrent.js)
  if (s.concurrency > 1) enterConcurrentMode();
  process.env.ZFAAS_PARAMS = '{}';
  // A stem cell learns its function (and the function's environment) only when it is given one.
  for (const k of Object.keys(msg.env)) process.env[k] = msg.env[k];
  try {
    const loaded = await loadFunction(msg.dir || '/ws', msg.handler, format);
    s.runner = makeRunner(loaded.fn, loaded.format, loaded.kind);
    s.send({ op: 'loaded', ok: true, format: loaded.format });
  } catch (e) {
    s.runner = null;
    s.send({ op: 'loaded', ok: false, error: e instanceof NoHandler ? e.message : formatError(e) });
  }
}

function answerUnknown(s, msg) {
  const op = msg.op;
  let what;
  if (op === undefined || op === null) what = 'no op';
  else if (typeof op === 'string') what = 'unknown op ' + JSON.stringify(op.length > 40 ? op.slice(0, 40) + '...' : op);
  else what = 'op of type ' + typeof op;
  s.refuse(`${what}: expected "load", "call", "cancel", "secrets" or "ping"`, msg.id);
}

function answer(s, msg) {
  switch (msg.op) {
    case 'call':
      return answerCall(s, msg);
    case 'ping':
      return s.send({ op: 'pong' });
    case 'secrets':
      return answerSecrets(s, msg);
    case 'load':
      return answerLoad(s, msg);
    case 'cancel':
      return cancelCall(s, msg);
    default:
      return answerUnknown(s, msg);
  }
}

// The protocol over any line stream: hello first, then one request at a time, each answered in order.
function speak(input, send, onEnd) {
  redirectOutput(false);
  process.on('uncaughtException', strayError);
  process.on('unhandledRejection', (r) => strayError(r instanceof Error ? r : new Error('unhandled rejection: ' + formatError(r))));
  send({ op: 'hello', v: PROTOCOL, pid: process.pid });

  const refuse = (error, id) => {
    const reply = { op: 'error', error };
    if (Number.isInteger(id)) reply.id = id;
    send(reply);
  };
  const s = { send, refuse, runner: null, concurrency: 1 };
  let chain = Promise.resolve();
  const beside = new Set(); // calls running beside the chain (several at once), and cancels
  readLines(
    input,
    (text) => {
      text = text.trim();
      if (!text) return;
      let msg;
      try {
        msg = JSON.parse(text);
        if (!msg || typeof msg !== 'object' || Array.isArray(msg)) throw new Error('message is not an object');
      } catch (e) {
        const error = `bad message: ${String(e.message).slice(0, 200)}: expected a JSON object`;
        chain = chain.then(() => refuse(error));
        return;
      }
      const p = chain.then(() => answer(s, msg)).catch((e) => realStderrWrite(`zfaas loader: ${formatError(e)}\n`));
      // After what came before it, but the next request does not wait for it.
      if (msg.op === 'cancel' || (msg.op === 'call' && s.concurrency > 1)) {
        beside.add(p);
        p.finally(() => beside.delete(p));
      } else chain = p;
    },
    () => chain.then(() => Promise.all([...beside])).then(onEnd),
  );
}
