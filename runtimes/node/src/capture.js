// Output capture: what a function writes (console.*, process.stdout/stderr) during a call goes into the call's
// `logs` (bounded, keeping the end); outside a call it goes to stderr; never to the protocol.
const realStdoutWrite = process.stdout.write.bind(process.stdout);
const realStderrWrite = process.stderr.write.bind(process.stderr);

let collecting = false;
let chunks = [];
let size = 0;
let dropped = 0;

function captureWrite(chunk, encoding, cb) {
  if (typeof encoding === 'function') {
    cb = encoding;
    encoding = undefined;
  }
  if (!collecting) return realStderrWrite(chunk, encoding, cb);
  let s;
  if (typeof chunk === 'string') s = chunk;
  else if (chunk instanceof Uint8Array) s = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString('utf8');
  else s = String(chunk);
  chunks.push(s);
  size += s.length;
  if (size > 2 * LOG_LIMIT) {
    let text = chunks.join('');
    dropped += text.length - LOG_LIMIT;
    text = text.slice(-LOG_LIMIT);
    chunks = [text];
    size = text.length;
  }
  if (typeof cb === 'function') process.nextTick(cb);
  return true;
}

function startCapture() {
  chunks = [];
  size = 0;
  dropped = 0;
  collecting = true;
}

function stopCapture() {
  collecting = false;
  let text = chunks.join('');
  let d = dropped;
  if (text.length > LOG_LIMIT) {
    d += text.length - LOG_LIMIT;
    text = text.slice(-LOG_LIMIT);
  }
  chunks = [];
  size = 0;
  dropped = 0;
  return d ? `[... ${d} characters of logs truncated ...]\n` + text : text;
}

function redirectOutput(toStderrOnly) {
  // console.* look up stream.write on every call, so replacing the method catches them too.
  process.stdout.write = toStderrOnly ? realStderrWrite : captureWrite;
  if (!toStderrOnly) process.stderr.write = captureWrite;
}
