// Calling a function: a Lambda-like context, its value or error as a reply, and the processes a call left running.
let current = null; // { reject } of the running call, for stray async errors

// When a call's own variables are gone (read at the start of the call): ZFAAS_DEADLINE, else ZFAAS_TIMEOUT s.
function callEnd() {
  const deadline = Number(process.env.ZFAAS_DEADLINE); // epoch ms
  return deadline > 0 ? deadline : Date.now() + Number(process.env.ZFAAS_TIMEOUT || 30) * 1000;
}

function makeContext(id) {
  const end = callEnd(); // read now: a call's own variables (ZFAAS_DEADLINE) are gone once it returns
  return {
    awsRequestId: String(id),
    requestId: String(id),
    functionName: process.env.ZFAAS_FUNCTION || '',
    functionVersion: process.env.ZFAAS_FUNCTION_VERSION || '',
    memoryLimitInMB: process.env.ZFAAS_MEMORY || '',
    getRemainingTimeInMillis: () => Math.max(0, end - Date.now()),
    callbackWaitsForEmptyEventLoop: false,
  };
}

function invoke(fn, params, id) {
  return new Promise((resolve, reject) => {
    current = { reject };
    try {
      if (fn.length >= 3) {
        let done = false;
        const cb = (err, value) => {
          if (done) return;
          done = true;
          if (err) reject(err);
          else resolve(value);
        };
        const r = fn(params, makeContext(id), cb);
        if (r && typeof r.then === 'function')
          r.then(
            (v) => cb(null, v),
            (e) => cb(e || new Error('rejected')),
          );
      } else if (fn.length === 2) {
        Promise.resolve(fn(params, makeContext(id))).then(resolve, reject);
      } else {
        Promise.resolve(fn(params)).then(resolve, reject);
      }
    } catch (e) {
      reject(e);
    }
  }).finally(() => {
    current = null;
  });
}

function toResult(value) {
  if (value === undefined) return '';
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return Buffer.from(value).toString('utf8');
  const s = JSON.stringify(value);
  return s === undefined ? '' : s;
}

function formatError(e) {
  if (e instanceof Error) {
    let stack = String(e.stack || `${e.name}: ${e.message}`);
    stack = stack
      .split('\n')
      .filter((l) => !l.includes(LOADER_FILE) && !INTERNAL_FRAME.test(l))
      .join('\n');
    const head = `${e.name || 'Error'}: ${e.message}`;
    if (!stack.startsWith(head)) stack = head + '\n' + stack;
    if (stack.length > ERR_LIMIT) stack = stack.slice(0, 512) + '\n...\n' + stack.slice(-(ERR_LIMIT - 512));
    return stack;
  }
  try {
    return 'thrown: ' + (typeof e === 'string' ? e : JSON.stringify(e));
  } catch (_) {
    return 'thrown: ' + String(e);
  }
}

// A call's reply with the function's value as its result.
function valueReply(id, value) {
  const result = toResult(value);
  const reply = { op: 'result', id, ok: true, result };
  if (result.length > RESULT_LIMIT) {
    reply.result = result.slice(0, RESULT_LIMIT);
    reply.truncated = true;
  }
  return reply;
}

// A web call's reply: the response (and the value, when the function answered a plain one).
function webReply(id, r) {
  if (r.body.length > RESULT_LIMIT)
    throw new ResponseError(`response too large: its body is ${r.body.length} bytes, at most ${RESULT_LIMIT}`);
  const reply = r.value === undefined ? { op: 'result', id, ok: true } : valueReply(id, r.value);
  reply.http = { status: r.status, headers: r.headers, body: r.body.toString('base64') };
  return reply;
}

const errorText = (e) => (e instanceof ReplyError ? e.message : formatError(e));

// Processes in this container other than init (pid 1) and this loader: what a call left running.
// One readdir of /proc (its pid entries are the only ones starting with a digit). A loader that keeps a
// process of its own (the provided runtime's bootstrap) names it in ownRoot: it and what descends from it
// are not strays. The readdir is skipped while the container's task count (its pids cgroup, read again
// through one open file: one system call instead of five) is what it was after the last look that found
// none, and that look is less than RESCAN_MS old: a call that starts a process changes the count, unless
// it also ends a thread that was running before it; the next look within RESCAN_MS finds that one too.
const SELF = String(process.pid);
const RESCAN_MS = 250;
let ownRoot = null;
let tasksFd; // undefined: not opened yet; null: no pids cgroup to read
const tasksBuf = Buffer.alloc(32);
let cleanTasks = -1; // the task count when the last look found no stray
let cleanAt = 0;

function taskCount() {
  if (tasksFd === undefined) {
    tasksFd = null;
    for (const f of ['/sys/fs/cgroup/pids.current', '/sys/fs/cgroup/pids/pids.current']) {
      try {
        tasksFd = fs.openSync(f, 'r');
        break;
      } catch (_) {
        // another cgroup layout, or none
      }
    }
  }
  if (tasksFd === null) return -1;
  try {
    const n = Number(tasksBuf.toString('latin1', 0, fs.readSync(tasksFd, tasksBuf, 0, tasksBuf.length, 0)).trim());
    return Number.isInteger(n) && n > 0 ? n : -1;
  } catch (_) {
    return -1;
  }
}

function strayProcesses() {
  const tasks = taskCount();
  const now = Date.now();
  if (tasks > 0 && tasks === cleanTasks && now - cleanAt < RESCAN_MS) return 0;
  const n = scanProcesses();
  if (n === 0) [cleanTasks, cleanAt] = [tasks, now];
  return n;
}

function scanProcesses() {
  let names;
  try {
    names = fs.readdirSync('/proc');
  } catch (_) {
    return 0;
  }
  let n = 0;
  for (let i = 0; i < names.length; i++) {
    const c = names[i].charCodeAt(0);
    if (c >= 48 && c <= 57 && names[i] !== '1' && names[i] !== SELF && !(ownRoot && descendsFrom(names[i], ownRoot))) n++;
  }
  return n;
}

// Whether process `pid` is `root` or below it (its parents, from /proc/PID/stat).
function descendsFrom(pid, root) {
  for (let hops = 0; pid && pid !== '0' && pid !== '1' && hops < 64; hops++) {
    if (pid === root) return true;
    let stat;
    try {
      stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch (_) {
      return true; // gone already: not left running
    }
    pid = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1];
  }
  return false;
}

function strayError(e) {
  const mine = concurrentCallOf(); // concurrent.js
  if (mine) mine.fail(e);
  else if (current) current.reject(e);
  else realStderrWrite(`zfaas loader: uncaught error outside a call: ${formatError(e)}\n`);
}
