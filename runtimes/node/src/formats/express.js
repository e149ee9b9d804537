// Express-like requests and responses, as Google Cloud Functions (gcf) give them to a (req, res) function.
// req.body as Express's body parsers leave it: JSON, text and forms parsed, the rest as bytes; none: {}.
function parsedBody(raw, mt) {
  if (raw.length === 0) return {};
  if (mt === 'application/json' || mt.endsWith('+json')) return JSON.parse(raw.toString('utf8'));
  if (mt.startsWith('text/')) return raw.toString('utf8');
  if (mt === 'application/x-www-form-urlencoded') return parseQuery(raw.toString('utf8'), 'array');
  return raw;
}

// -> { raw, body } or { bad }: the 400 the framework answers for a JSON body that does not parse
function expressBody(h, defaultType) {
  const raw = h.body ? Buffer.from(h.body, 'base64') : EMPTY;
  try {
    return { raw, body: parsedBody(raw, mediaType(h.headers['content-type']) || defaultType) };
  } catch (e) {
    const text = `Bad Request: the body is not valid JSON (${e.message})\n`;
    return { bad: { status: 400, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: Buffer.from(text, 'utf8') } };
  }
}

const TYPES = {
  html: 'text/html',
  htm: 'text/html',
  text: 'text/plain',
  txt: 'text/plain',
  css: 'text/css',
  csv: 'text/csv',
  md: 'text/markdown',
  json: 'application/json',
  js: 'application/javascript',
  xml: 'application/xml',
  form: 'application/x-www-form-urlencoded',
  urlencoded: 'application/x-www-form-urlencoded',
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  svg: 'image/svg+xml',
  ico: 'image/x-icon',
  pdf: 'application/pdf',
  zip: 'application/zip',
  wasm: 'application/wasm',
  mp3: 'audio/mpeg',
  mp4: 'video/mp4',
  bin: 'application/octet-stream',
};
const lookupType = (t) =>
  String(t).includes('/') ? String(t) : TYPES[String(t).replace(/^\./, '').toLowerCase()] || 'application/octet-stream';
const HAS_CHARSET = /;\s*charset\s*=/i;
// Express adds the charset of text types to a Content-Type that has none
const withCharset = (ct) =>
  !HAS_CHARSET.test(ct) && /^\s*(?:text\/|application\/(?:json|javascript)\s*(?:;|$))/i.test(ct) ? ct + '; charset=utf-8' : ct;
// and a string body makes it utf-8
const utf8Charset = (ct) => (HAS_CHARSET.test(ct) ? ct.replace(/(;\s*charset\s*=\s*)[^;]*/i, '$1utf-8') : ct + '; charset=utf-8');

class WebRequest {
  constructor(h, body, raw, query) {
    this.method = h.method;
    this.headers = h.headers;
    this.url = h.query ? `${h.path}?${h.query}` : h.path;
    this.originalUrl = this.url;
    this.baseUrl = '';
    this.path = h.path;
    this.query = query;
    this.params = {};
    this.body = body;
    this.rawBody = raw;
    this.ip = h.sourceIp;
    this.ips = [];
    this.protocol = 'http';
    this.secure = false;
    this.hostname = (h.headers.host || '').replace(/:\d+$/, '');
  }

  get(name) {
    const k = String(name).toLowerCase();
    if (k === 'referer' || k === 'referrer') return this.headers.referrer || this.headers.referer;
    return this.headers[k];
  }

  header(name) {
    return this.get(name);
  }

  is(...types) {
    const mt = mediaType(this.headers['content-type']);
    if (!mt) return null;
    for (const t of types.flat()) {
      const want = lookupType(t).replace(/\*\//, '');
      if (mt === want || (want.endsWith('/*') && mt.startsWith(want.slice(0, -1))) || (want.startsWith('+') && mt.endsWith(want))) return t;
    }
    return false;
  }
}

function headersSentError() {
  const e = new Error('Cannot set headers after they are sent to the client');
  e.code = 'ERR_HTTP_HEADERS_SENT';
  return e;
}

// A response as Express (over node's http.ServerResponse) lets a function make it; `onFinish` hears when
// it is finished (send, json, end, sendStatus, redirect).
class WebResponse extends EventEmitter {
  constructor(method, onFinish) {
    super();
    this.statusCode = 200;
    this.statusMessage = '';
    this.headersSent = false;
    this.finished = false;
    this.writableEnded = false;
    this.writableFinished = false;
    this.locals = {};
    this._method = method;
    this._onFinish = onFinish;
    this._headers = Object.create(null); // lower-case name -> value
    this._names = Object.create(null); // lower-case name -> the name as set
    this._chunks = [];
  }

  setHeader(name, value) {
    if (this.headersSent) throw headersSentError();
    const k = String(name).toLowerCase();
    this._headers[k] = value;
    this._names[k] = String(name);
    return this;
  }

  getHeader(name) {
    return this._headers[String(name).toLowerCase()];
  }

  getHeaders() {
    const out = {};
    for (const k in this._headers) setKey(out, k, this._headers[k]);
    return out;
  }

  getHeaderNames() {
    return Object.keys(this._headers);
  }

  hasHeader(name) {
    return String(name).toLowerCase() in this._headers;
  }

  removeHeader(name) {
    if (this.headersSent) throw headersSentError();
    delete this._headers[String(name).toLowerCase()];
  }

  writeHead(code, message, headers) {
    if (typeof message === 'string') this.statusMessage = message;
    else headers = message;
    this.statusCode = code;
    if (Array.isArray(headers)) for (let i = 0; i + 1 < headers.length; i += 2) this.setHeader(headers[i], headers[i + 1]);
    else if (headers) for (const k of Object.keys(headers)) this.setHeader(k, headers[k]);
    this.headersSent = true;
    return this;
  }

  write(chunk, encoding, cb) {
    if (typeof encoding === 'function') {
      cb = encoding;
      encoding = undefined;
    }
    if (this.finished) throw new Error('write after end');
    this._push(chunk, encoding);
    if (this._stream) this._flushStream(); // a web call: the head, then each write, as they come
    this.headersSent = true;
    if (typeof cb === 'function') process.nextTick(cb);
    return true;
  }

  end(chunk, encoding, cb) {
    if (typeof chunk === 'function') {
      cb = chunk;
      chunk = undefined;
    } else if (typeof encoding === 'function') {
      cb = encoding;
      encoding = undefined;
    }
    if (!this.finished) {
      if (chunk !== undefined && chunk !== null) this._push(chunk, encoding);
      if (this._stream && this._stream.headSent) this._flushStream();
      this._finish();
    }
    if (typeof cb === 'function') process.nextTick(cb);
    return this;
  }

  status(code) {
    this.statusCode = code;
    return this;
  }

  set(field, value) {
    if (value === undefined && field !== null && typeof field === 'object') {
      for (const k of Object.keys(field)) this.set(k, field[k]);
      return this;
    }
    let v = Array.isArray(value) ? value.map(String) : String(value);
    if (String(field).toLowerCase() === 'content-type') {
      if (Array.isArray(v)) throw new TypeError('Content-Type cannot be set to an Array');
      v = withCharset(v);
    }
    return this.setHeader(field, v);
  }

  header(field, value) {
    return this.set(field, value);
  }

  get(field) {
    return this.getHeader(field);
  }

  append(field, value) {
    const prev = this.get(field);
    return this.set(field, prev === undefined ? value : [].concat(prev, value));
  }

  type(t) {
    return this.set('Content-Type', lookupType(t));
  }

  contentType(t) {
    return this.type(t);
  }

  location(url) {
    return this.set('Location', url);
  }

  vary(field) {
    return this.append('Vary', field);
  }

  cookie(name, value, opts = {}) {
    let c = `${name}=${encodeURIComponent(typeof value === 'object' ? 'j:' + JSON.stringify(value) : String(value))}`;
    if (opts.maxAge !== undefined) {
      const ms = Number(opts.maxAge);
      c += `; Max-Age=${Math.floor(ms / 1000)}; Expires=${new Date(Date.now() + ms).toUTCString()}`;
    } else if (opts.expires) c += `; Expires=${new Date(opts.expires).toUTCString()}`;
    if (opts.domain) c += `; Domain=${opts.domain}`;
    c += `; Path=${opts.path || '/'}`;
    if (opts.httpOnly) c += '; HttpOnly';
    if (opts.secure) c += '; Secure';
    if (opts.sameSite) c += `; SameSite=${opts.sameSite === true ? 'Strict' : opts.sameSite[0].toUpperCase() + opts.sameSite.slice(1)}`;
    return this.append('Set-Cookie', c);
  }

  clearCookie(name, opts = {}) {
    return this.cookie(name, '', { ...opts, maxAge: undefined, expires: 1 });
  }

  redirect(a, b) {
    const [code, url] = typeof a === 'number' ? [a, b] : [typeof b === 'number' ? b : 302, a];
    this.statusCode = code;
    this.location(url).type('txt');
    return this.send(`${statusText(code) || 'Found'}. Redirecting to ${url}`);
  }

  send(body) {
    let chunk = body;
    if (typeof chunk === 'number' && arguments.length === 1) {
      // Express 4: res.send(status)
      if (this.get('Content-Type') === undefined) this.type('txt');
      this.statusCode = chunk;
      chunk = statusText(chunk) || String(chunk);
    }
    switch (typeof chunk) {
      case 'string':
        if (this.get('Content-Type') === undefined) this.type('html');
        break;
      case 'boolean':
      case 'number':
      case 'object':
        if (chunk === null) chunk = '';
        else if (chunk instanceof Uint8Array) {
          if (this.get('Content-Type') === undefined) this.type('bin');
        } else return this.json(chunk);
        break;
    }
    if (typeof chunk === 'string') {
      const ct = this.get('Content-Type');
      if (typeof ct === 'string') this.setHeader('Content-Type', utf8Charset(ct));
    }
    return this.end(chunk);
  }

  json(obj) {
    const body = JSON.stringify(obj);
    if (this.get('Content-Type') === undefined) this.set('Content-Type', 'application/json');
    return this.send(body);
  }

  sendStatus(code) {
    this.statusCode = code;
    this.type('txt');
    return this.send(statusText(code) || String(code));
  }

  _push(chunk, encoding) {
    if (typeof chunk === 'string') this._chunks.push(Buffer.from(chunk, encoding || 'utf8'));
    else if (chunk instanceof Uint8Array) this._chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    else throw new TypeError(`the chunk must be a string, a Buffer or a Uint8Array, got ${describe(chunk)}`);
  }

  _finish() {
    this.finished = this.writableEnded = this.writableFinished = this.headersSent = true;
    this._onFinish(this);
    process.nextTick(() => {
      this.emit('finish');
      this.emit('close');
    });
  }

  // Streams what was written so far (the head first, once): write() was called in a web call.
  _flushStream() {
    const st = this._stream;
    if (!st.headSent) {
      const a = this._answer('statusCode');
      this._chunks = [];
      streamHead(st, a.status, a.headers);
      if (a.body.length) streamWrite(st, a.body);
      return;
    }
    const chunks = this._chunks;
    this._chunks = [];
    if (this._method !== 'HEAD') for (const c of chunks) streamWrite(st, c);
  }

  // The response as the protocol carries it (throws a ReplyError for a malformed one).
  _answer(field) {
    const status = statusOf(this.statusCode, field);
    const headers = {};
    for (const k in this._headers) {
      const v = this._headers[k];
      if (v !== undefined) headers[headerName(this._names[k])] = headerValue(this._names[k], v, true);
    }
    const n = this._chunks.length;
    let body = n === 0 ? EMPTY : n === 1 ? this._chunks[0] : Buffer.concat(this._chunks);
    if (status === 204 || status === 304) {
      delete headers['content-type'];
      delete headers['content-length'];
      delete headers['transfer-encoding'];
      body = EMPTY;
    } else if (this._method === 'HEAD') body = EMPTY;
    return { status, headers, body };
  }
}

// Runs a (req, res) function: its answer is the response once finished, whenever that is.
function runGcf(fn, req) {
  return new Promise((resolve, reject) => {
    current = { reject };
    let settled = false;
    const res = new WebResponse(req.method, (r) => {
      if (settled) return;
      settled = true;
      try {
        resolve(r._answer('statusCode'));
      } catch (e) {
        reject(e);
      }
    });
    const failed = (e) => {
      if (!settled) {
        settled = true;
        reject(e);
      } else process.stderr.write(`zfaas: the function failed after its response was sent: ${formatError(e)}\n`);
    };
    res._stream = streaming; // a web call's: res.write streams (stream.js)
    try {
      const r = fn(req, res);
      if (r && typeof r.then === 'function') r.then(null, failed);
    } catch (e) {
      failed(e);
    }
  }).finally(() => {
    current = null;
  });
}
