// What every web format shares: request bodies and queries as platforms give them, and the checks of the
// response a function shaped (status, header names and values, base64).
const EMPTY = Buffer.alloc(0);
const isUtf8 =
  require('buffer').isUtf8 ||
  ((b) => {
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(b);
      return true;
    } catch (_) {
      return false;
    }
  });
const statusText = (code) => require('http').STATUS_CODES[code];
const hasOwn = (o, k) => Object.prototype.hasOwnProperty.call(o, k);

// sets obj[k] = v, also for k = "__proto__" (an own property, not the object's prototype)
function setKey(obj, k, v) {
  if (k === '__proto__') Object.defineProperty(obj, k, { value: v, enumerable: true, writable: true, configurable: true });
  else obj[k] = v;
}

function assignParams(into, from) {
  for (const k of Object.keys(from)) setKey(into, k, from[k]);
}

// A query string as an object; a repeated name keeps its last value (join 'last'), all of them in an array
// ('array') or them joined by the string `join`.
function parseQuery(q, join) {
  const out = {};
  if (!q) return out;
  for (const [k, v] of new URLSearchParams(q)) {
    if (!hasOwn(out, k)) setKey(out, k, v);
    else if (join === 'last') out[k] = v;
    else if (join === 'array') out[k] = Array.isArray(out[k]) ? out[k].concat(v) : [out[k], v];
    else out[k] += join + v;
  }
  return out;
}

function mediaType(ct) {
  if (Array.isArray(ct)) ct = ct[0];
  if (typeof ct !== 'string' || !ct) return '';
  const i = ct.indexOf(';');
  return (i === -1 ? ct : ct.slice(0, i)).trim().toLowerCase();
}
const TEXTUAL = /^text\/|json|xml|javascript|x-www-form-urlencoded/;
const BINARY = /^(?:image|audio|video|font)\/|^application\/(?:octet-stream|pdf|zip|gzip|x-gzip|x-tar|wasm)$/;
const isBinary = (mt) => BINARY.test(mt) && !mt.endsWith('+xml');

// A request body for an event: the text when its content type is textual and it is valid UTF-8, else base64.
function eventBody(h) {
  if (TEXTUAL.test(mediaType(h.headers['content-type']))) {
    const buf = Buffer.from(h.body, 'base64');
    if (isUtf8(buf)) return { text: buf.toString('utf8'), base64: false };
  }
  return { text: h.body, base64: true };
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad2 = (n) => (n < 10 ? '0' + n : String(n));
function clfTime(ms) {
  const d = new Date(ms);
  const time = `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())}`;
  return `${pad2(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${time} +0000`;
}

// ---- checking what a function answered

const malformed = (what) => new ResponseError('malformed response: ' + what);

function describe(v) {
  if (v === undefined || v === null) return String(v);
  if (Array.isArray(v)) return 'an array';
  if (Buffer.isBuffer(v)) return 'a Buffer';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'function') return 'a function';
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? v.slice(0, 60) + '...' : v);
  return String(v);
}

function statusOf(v, field) {
  const n = typeof v === 'string' && /^\d{3}$/.test(v) ? Number(v) : v;
  if (Number.isInteger(n) && n >= 100 && n <= 599) return n;
  throw malformed(`${field} must be an integer from 100 to 599, got ${describe(v)}`);
}

const CRLF = /[\r\n]/;
const BAD_VALUE_CHAR = /[^\t\x20-\x7e\x80-\xff]/;

function headerName(name) {
  if (CRLF.test(name)) throw malformed(`header name ${JSON.stringify(name)} contains CR or LF`);
  if (!TOKEN.test(name)) throw malformed(`header name ${JSON.stringify(name)} is not a valid token`);
  return name.toLowerCase();
}

// A header's value as the protocol carries it: a string or an array of strings. Numbers (and, where the
// platform allows them, booleans) become strings.
function headerValue(name, v, bools) {
  const one = (x) => {
    if (typeof x === 'string') {
      if (CRLF.test(x)) throw malformed(`header ${JSON.stringify(name)} contains CR or LF`);
      if (BAD_VALUE_CHAR.test(x)) throw malformed(`header ${JSON.stringify(name)} contains a control character or one beyond U+00FF`);
      return x;
    }
    if ((typeof x === 'number' && Number.isFinite(x)) || (bools && typeof x === 'boolean')) return String(x);
    throw malformed(`header ${JSON.stringify(name)} must be a string, a number or an array of them, got ${describe(v)}`);
  };
  if (!Array.isArray(v)) return one(v);
  const out = new Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = one(v[i]);
  return out;
}

// Adds a response's headers object to `out` (names in lower case; set-cookie values add up).
function addHeaders(out, obj, field, bools) {
  if (obj === undefined || obj === null) return;
  if (typeof obj !== 'object' || Array.isArray(obj)) throw malformed(`${field} must be an object, got ${describe(obj)}`);
  for (const name of Object.keys(obj)) {
    const v = obj[name];
    if (v === undefined) continue; // as JSON leaves it out
    const key = headerName(name);
    const value = headerValue(name, v, bools);
    out[key] = key === 'set-cookie' && out[key] !== undefined ? [].concat(out[key], value) : value;
  }
}

function fromBase64(s, what) {
  const t = /\s/.test(s) ? s.replace(/\s+/g, '') : s;
  if (!BASE64.test(t) || t.length % 4 === 1 || (t.endsWith('=') && t.length % 4 !== 0)) throw malformed(what);
  return Buffer.from(t, 'base64');
}

const jsonAnswer = (v, text) => ({
  status: 200,
  headers: { 'content-type': 'application/json' },
  body: Buffer.from(text === undefined ? 'null' : text, 'utf8'),
  value: v,
});
