// Streamed answers (protocol version 3): a web call's function that writes its response as it goes has
// the head ({"op":"head"}) sent at its first write, then each write as {"op":"chunk"} (base64, at most
// STREAM_CHUNK_LIMIT bytes a message), before the call's result, whose http.body is then empty and whose
// `streamed` counts the bytes sent. Lambda's form is awslambda.streamifyResponse (the global below, as
// Lambda's Node runtime has it); gcf's is res.write before res.end (formats/express.js).
let streaming = null; // the web call running now, which may stream: { id, send, headSent, bytes }

// A web call begins: it may stream until closeStream.
function openStream(s, id) {
  streaming = { id, send: s.send, headSent: false, bytes: 0 };
  return streaming;
}

// The call ended: a streamed answer's result carries no body (what the function still gave is sent as a
// last chunk) and says how many bytes went.
function closeStream(st, reply) {
  if (streaming === st) streaming = null;
  if (!st.headSent || !reply.ok || !reply.http) return reply;
  try {
    const rest = Buffer.from(reply.http.body, 'base64');
    if (rest.length) streamWrite(st, rest);
  } catch (e) {
    return { op: 'result', id: reply.id, ok: false, error: errorText(e), fault: 'response' };
  }
  reply.http.body = '';
  reply.streamed = st.bytes;
  return reply;
}

// Sends the head, once: status and headers checked as any response's are.
function streamHead(st, status, headers) {
  if (st.headSent) return;
  const checked = {};
  addHeaders(checked, headers, 'headers', true);
  st.headSent = true;
  st.send({ op: 'head', id: st.id, status: statusOf(status, 'statusCode'), headers: checked });
}

// Sends a write as chunks, after the head.
function streamWrite(st, buf) {
  if (!st.headSent) throw new Error('zfaas: a chunk before the head');
  if (st.bytes + buf.length > STREAM_LIMIT)
    throw new ResponseError(`response too large: a streamed answer is at most ${STREAM_LIMIT} bytes`);
  st.bytes += buf.length;
  for (let at = 0; at < buf.length; at += STREAM_CHUNK_LIMIT)
    st.send({ op: 'chunk', id: st.id, data: buf.subarray(at, at + STREAM_CHUNK_LIMIT).toString('base64') });
}

// ---- Lambda response streaming: awslambda.streamifyResponse(async (event, responseStream, context) => ...)
const HANDLER_STREAMING = Symbol.for('aws.lambda.runtime.handler.streaming');
const STREAM_RESPONSE = 'response';
const isStreamified = (fn) => typeof fn === 'function' && fn[HANDLER_STREAMING] === STREAM_RESPONSE;

// The responseStream a streaming handler writes to: a Writable. Without a web call (or before its first
// write) it keeps what is written, for a call's value.
class LambdaResponseStream extends require('stream').Writable {
  constructor(st) {
    super();
    this._st = st;
    this._prelude = null; // HttpResponseStream.from's {statusCode, headers, cookies}
    this._contentType = null;
    this._kept = [];
  }

  setContentType(ct) {
    this._contentType = String(ct);
  }

  _head() {
    if (!this._st || this._st.headSent) return;
    const p = this._prelude || {};
    const headers = {};
    addHeaders(headers, p.headers, 'headers', false);
    if (Array.isArray(p.cookies) && p.cookies.length) headers['set-cookie'] = headerValue('set-cookie', p.cookies, false);
    if (headers['content-type'] === undefined) headers['content-type'] = this._contentType || 'application/octet-stream';
    streamHead(this._st, p.statusCode === undefined ? 200 : p.statusCode, headers);
  }

  _write(chunk, _encoding, cb) {
    try {
      if (this._st) {
        this._head();
        streamWrite(this._st, chunk);
      } else this._kept.push(chunk);
      cb();
    } catch (e) {
      cb(e);
    }
  }

  _final(cb) {
    try {
      this._head();
      cb();
    } catch (e) {
      cb(e);
    }
  }
}

globalThis.awslambda = {
  streamifyResponse(handler) {
    if (typeof handler !== 'function') throw new TypeError('awslambda.streamifyResponse needs a function');
    handler[HANDLER_STREAMING] = STREAM_RESPONSE;
    return handler;
  },
  HttpResponseStream: {
    // The stream with its HTTP status and headers: they go with its first write.
    from(stream, prelude) {
      if (stream instanceof LambdaResponseStream) stream._prelude = prelude || {};
      return stream;
    },
  },
};

// Runs a streaming handler; the call ends when its promise settles and the stream has ended (ended for it
// if it had not). A web call's answer is the head it sent (or, where it cannot stream, as with several
// calls at once in its container, the whole response); another call's value is what it wrote.
function runStreamingLambda(fn, event, ctx, web) {
  const st = web ? streaming : null;
  const out = new LambdaResponseStream(st);
  return new Promise((resolve, reject) => {
    current = { reject };
    out.on('error', reject);
    const ended = () => {
      const p = out._prelude || {};
      const status = statusOf(p.statusCode === undefined ? 200 : p.statusCode, 'statusCode');
      if (st) return resolve({ status, headers: {}, body: EMPTY });
      const body = Buffer.concat(out._kept);
      if (!web) return resolve(body.toString('utf8'));
      const headers = {};
      addHeaders(headers, p.headers, 'headers', false);
      if (headers['content-type'] === undefined) headers['content-type'] = out._contentType || 'application/octet-stream';
      resolve({ status, headers, body });
    };
    let r;
    try {
      r = fn(event, out, ctx);
    } catch (e) {
      return reject(e);
    }
    Promise.resolve(r).then(() => {
      if (out.writableFinished) return ended();
      out.once('finish', ended);
      if (!out.writableEnded) out.end();
    }, reject);
  }).finally(() => {
    current = null;
  });
}
