// The Lambda Runtime API on 127.0.0.1:9001 (ZFAAS_RUNTIME_API_PORT for tests on a host), the bootstrap it
// serves, and the runner a call uses: each call one invocation, its response the result.
const http = require('http');
const { randomBytes, randomUUID } = require('crypto');
const { spawn } = require('child_process');

const API_HOST = '127.0.0.1';
const API_PORT = Number(process.env.ZFAAS_RUNTIME_API_PORT) || 9001;
const API_PATH = '/2018-06-01/runtime';
const REGION = 'local';
const INVOCATION = new RegExp(`^${API_PATH}/invocation/([^/]+)/(response|error)$`);

const rt = {
  dir: null,
  handler: null,
  server: null,
  child: null, // the bootstrap
  exited: null, // how it ended, once it has
  initError: null, // what it posted to /init/error
  onReady: null, // settles the wait for its first /next
  nexts: [], // its /next requests waiting for an invocation
  queued: null, // an invocation waiting for its /next
  running: null, // { id, resolve, reject } of the invocation it is working on
};

const arn = () => `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${process.env.ZFAAS_FUNCTION || 'function'}`;

function reply(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

// The request's body (at most RESULT_LIMIT bytes: more is refused, as Lambda refuses a response over 6 MB).
function readBody(req) {
  return new Promise((resolve, reject) => {
    const parts = [];
    let size = 0;
    req.on('data', (d) => {
      size += d.length;
      if (size <= RESULT_LIMIT) parts.push(d);
    });
    req.on('end', () =>
      size > RESULT_LIMIT
        ? reject(new ResponseError(`response too large: ${size} bytes, at most ${RESULT_LIMIT}`))
        : resolve(Buffer.concat(parts)),
    );
    req.on('error', reject);
  });
}

function deliver(res, inv) {
  res.writeHead(200, {
    'content-type': 'application/json',
    'lambda-runtime-aws-request-id': inv.id,
    'lambda-runtime-deadline-ms': String(inv.deadline),
    'lambda-runtime-invoked-function-arn': arn(),
    'lambda-runtime-trace-id': `Root=1-${Math.floor(Date.now() / 1000).toString(16)}-${randomBytes(12).toString('hex')};Sampled=0`,
  });
  res.end(inv.body);
}

// What the runtime said went wrong: {errorMessage, errorType} as Lambda's runtimes post it, else the text.
function errorOf(body, typeHeader) {
  let type = typeHeader || 'Unhandled';
  let message = body.toString('utf8');
  try {
    const e = JSON.parse(message);
    if (e && typeof e === 'object') {
      if (typeof e.errorType === 'string') type = e.errorType;
      if (typeof e.errorMessage === 'string') message = e.errorMessage;
    }
  } catch (_) {
    /* plain text */
  }
  return `${type}: ${message}`;
}

async function route(req, res) {
  const url = req.url.split('?')[0];
  if (req.method === 'GET' && url === `${API_PATH}/invocation/next`) {
    if (rt.onReady) rt.onReady(null);
    const inv = rt.queued;
    rt.queued = null;
    if (inv) deliver(res, inv);
    else rt.nexts.push(res);
    return;
  }
  if (req.method === 'POST' && url === `${API_PATH}/init/error`) {
    rt.initError = errorOf(await readBody(req), req.headers['lambda-runtime-function-error-type']);
    reply(res, 202, { status: 'OK' });
    if (rt.onReady) rt.onReady(new NoHandler(`the bootstrap failed to initialise: ${rt.initError}`));
    if (rt.child && !rt.exited) rt.child.kill('SIGKILL'); // as Lambda ends a runtime that failed its init
    return;
  }
  const m = req.method === 'POST' ? INVOCATION.exec(url) : null;
  if (!m) return reply(res, 404, { errorMessage: `no such route: ${req.method} ${url}`, errorType: 'InvalidRequest' });
  const running = rt.running;
  if (!running || running.id !== decodeURIComponent(m[1]))
    return reply(res, 400, { errorMessage: `no invocation ${m[1]} is running`, errorType: 'InvalidRequestID' });
  let body;
  try {
    body = await readBody(req);
  } catch (e) {
    rt.running = null;
    running.reject(e);
    return reply(res, 413, { errorMessage: e.message, errorType: 'RequestEntityTooLarge' });
  }
  rt.running = null;
  reply(res, 202, { status: 'OK' });
  // What it printed before it answered may still sit in its pipes: two turns of the event loop read it
  // into this call's logs.
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  if (m[2] === 'response') running.resolve(body.toString('utf8'));
  else running.reject(new ReplyError(errorOf(body, req.headers['lambda-runtime-function-error-type'])));
}

function listen() {
  if (rt.server) return Promise.resolve();
  const server = http.createServer((req, res) => {
    route(req, res).catch((e) => {
      if (!res.headersSent) reply(res, 500, { errorMessage: String(e && e.message), errorType: 'ServiceException' });
    });
  });
  // /next waits as long as there is no invocation: no timeout of Node's may end it.
  server.requestTimeout = 0;
  server.headersTimeout = 0;
  server.timeout = 0;
  server.keepAliveTimeout = 0;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(API_PORT, API_HOST, () => {
      server.removeListener('error', reject);
      rt.server = server;
      resolve();
    });
  });
}

// Starts the bootstrap; resolves once it asks for its first invocation, rejects if it fails to start.
function startBootstrap() {
  const file = path.join(rt.dir, 'bootstrap');
  rt.exited = null;
  rt.initError = null;
  const env = {
    ...process.env,
    AWS_LAMBDA_RUNTIME_API: `${API_HOST}:${API_PORT}`,
    LAMBDA_TASK_ROOT: rt.dir,
    LAMBDA_RUNTIME_DIR: path.dirname(LOADER_FILE),
    _HANDLER: rt.handler || '',
    AWS_LAMBDA_FUNCTION_NAME: process.env.ZFAAS_FUNCTION || 'function',
    AWS_LAMBDA_FUNCTION_VERSION: process.env.ZFAAS_FUNCTION_VERSION || '$LATEST',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: process.env.ZFAAS_MEMORY || '',
    AWS_REGION: REGION,
    AWS_DEFAULT_REGION: REGION,
  };
  delete env.ZFAAS_RUNTIME_API_PORT;
  return new Promise((resolve, reject) => {
    let settled = false;
    rt.onReady = (e) => {
      if (settled) return;
      settled = true;
      rt.onReady = null;
      if (e) reject(e);
      else resolve();
    };
    let child;
    try {
      child = spawn(file, [], { cwd: rt.dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      rt.onReady(new NoHandler(`cannot start ${file}: ${e.message}`));
      return;
    }
    rt.child = child;
    child.stdout.on('data', (d) => process.stdout.write(d));
    child.stderr.on('data', (d) => process.stderr.write(d));
    child.on('error', (e) => {
      const why = e.code === 'EACCES' ? 'it is not executable (chmod +x bootstrap)' : e.message;
      rt.exited = why;
      if (rt.onReady) rt.onReady(new NoHandler(`cannot start ${file}: ${why}`));
    });
    child.on('spawn', () => {
      ownRoot = String(child.pid);
    });
    child.on('exit', (code, signal) => {
      rt.exited = signal ? `killed by ${signal}` : `exit code ${code}`;
      for (const res of rt.nexts.splice(0)) res.destroy();
      if (rt.onReady)
        rt.onReady(
          new NoHandler(`the bootstrap ended (${rt.exited}) before it asked for an invocation${rt.initError ? `: ${rt.initError}` : ''}`),
        );
      if (rt.running) {
        const r = rt.running;
        rt.running = null;
        r.reject(new ReplyError(`the bootstrap ended (${rt.exited}) before it answered the invocation`));
      }
    });
  });
}

process.on('exit', () => {
  if (rt.child && !rt.exited) rt.child.kill('SIGKILL');
});

const PROVIDED_FORMATS = ['auto', 'json', 'lambda', 'lambda-v1'];

// -> { fn, format, kind } as the node loader's loadFunction: here the bootstrap, started and ready. Its
// format says what a web call's event is: json, the params the node made of the request; lambda and
// lambda-v1, API Gateway's event (payload 2.0 and 1.0), its response made of the bootstrap's answer.
async function loadFunction(dir, handler, format = 'auto') {
  if (!PROVIDED_FORMATS.includes(format))
    throw new NoHandler(
      `a provided function speaks the Lambda Runtime API: its format is json, lambda or lambda-v1 (or auto), not ${format}`,
    );
  dir = path.resolve(dir || '.');
  const file = path.join(dir, 'bootstrap');
  let st;
  try {
    st = fs.statSync(file);
  } catch (_) {
    st = null;
  }
  if (!st || !st.isFile())
    throw new NoHandler(`no bootstrap in ${dir}: a provided function's archive holds an executable file named bootstrap`);
  rt.dir = dir;
  rt.handler = handler || null;
  process.chdir(dir);
  await listen();
  await startBootstrap();
  return { fn: null, format: format === 'auto' ? 'json' : format, kind: 'provided' };
}

// One invocation of the bootstrap: the params are its event, its response the call's result.
async function invokeBootstrap(params) {
  if (rt.exited) {
    // as Lambda starts a new runtime after one ended; one that cannot start fails this call
    await startBootstrap().catch((e) => {
      throw new ReplyError(e.message);
    });
  }
  const inv = { id: randomUUID(), body: JSON.stringify(params === undefined ? null : params), deadline: callEnd() };
  return new Promise((resolve, reject) => {
    current = { reject };
    rt.running = { id: inv.id, resolve, reject };
    const res = rt.nexts.shift();
    if (res) deliver(res, inv);
    else rt.queued = inv;
  }).finally(() => {
    current = null;
    rt.queued = null;
  });
}

// The bootstrap's answer to an API Gateway event, as API Gateway reads it: JSON, else a string body.
function answerOf(body) {
  try {
    return JSON.parse(body);
  } catch (_) {
    return body;
  }
}

function makeRunner(fn, format) {
  const direct = (params) => invokeBootstrap(params);
  if (format !== 'lambda' && format !== 'lambda-v1') return { web: null, direct };
  const v1 = format === 'lambda-v1';
  const info = lambdaInfo();
  const event = v1 ? lambdaEventV1 : lambdaEventV2;
  return { web: (h, id) => invokeBootstrap(event(h, requestId(id), info)).then((body) => lambdaResponse(answerOf(body), v1)), direct };
}
