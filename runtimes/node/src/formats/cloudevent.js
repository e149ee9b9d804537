// CloudEvent functions (registered with functions.cloudEvent): the event is a call's params (structured mode),
// or a web request carrying it in binary mode (ce-* headers, the data as the body) or in structured mode
// (a JSON body); a web caller gets what the Functions Framework answers: 204 for no value, else the value.
const CE_REQUIRED = ['specversion', 'id', 'source', 'type'];
const CE_EXPECTED =
  'a CloudEvent: a JSON object with the string attributes specversion, id, source and type (structured mode), ' +
  'or a request with the headers ce-specversion, ce-id, ce-source and ce-type and the data as its body (binary mode)';

// What is wrong with `v` as a CloudEvent in structured mode, or null.
function ceProblem(v) {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return `got ${describe(v)}`;
  const missing = CE_REQUIRED.filter((k) => typeof v[k] !== 'string' || v[k] === '');
  return missing.length ? `${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} missing or not a non-empty string` : null;
}

// A structured-mode event as the function gets it: its attributes, and its data (data_base64 decoded).
function ceStructured(v) {
  const event = {};
  assignParams(event, v);
  if (typeof v.data_base64 === 'string' && v.data === undefined) {
    event.data = Buffer.from(v.data_base64, 'base64');
    delete event.data_base64;
  }
  return event;
}

const ceHeaderValue = (v) => {
  try {
    return decodeURIComponent(v); // the HTTP binding percent-encodes what a header cannot carry
  } catch (_) {
    return v;
  }
};

// -> { event } or { bad }: the event of a web request, binary mode first.
function ceFromWeb(h) {
  const hd = h.headers;
  if (CE_REQUIRED.every((k) => typeof hd['ce-' + k] === 'string')) {
    const event = {};
    for (const k of Object.keys(hd)) if (k.startsWith('ce-') && k.length > 3) setKey(event, k.slice(3), ceHeaderValue(hd[k]));
    if (hd['content-type']) event.datacontenttype = hd['content-type'];
    const b = expressBody(h, '');
    if (b.bad) return b;
    if (b.raw.length > 0) event.data = b.body;
    return { event };
  }
  const mt = mediaType(hd['content-type']);
  let problem = `got neither the ce-* headers nor a JSON body (content type ${mt || 'none'})`;
  if (mt === 'application/json' || mt.endsWith('+json')) {
    const b = expressBody(h, '');
    if (b.bad) return b;
    problem = ceProblem(b.body);
    if (!problem) return { event: ceStructured(b.body) };
  }
  const text = `Bad Request: expected ${CE_EXPECTED}; ${problem}\n`;
  return { bad: { status: 400, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: Buffer.from(text, 'utf8') } };
}

// Runs the function on the event: its value (a callback's, when it takes one as the framework allows).
function runCloudEvent(fn, event) {
  return new Promise((resolve, reject) => {
    current = { reject };
    let done = false;
    const cb = (err, value) => {
      if (done) return;
      done = true;
      if (err) reject(err);
      else resolve(value);
    };
    try {
      const r = fn.length > 1 ? fn(event, cb) : fn(event);
      if (fn.length <= 1 || (r && typeof r.then === 'function'))
        Promise.resolve(r).then(
          (v) => cb(null, v),
          (e) => cb(e || new Error('rejected')),
        );
    } catch (e) {
      cb(e);
    }
  }).finally(() => {
    current = null;
  });
}

// The framework's answer to a value: none is 204, a number is JSON, anything else as res.send sends it.
function ceAnswer(value) {
  let answer = null;
  const res = new WebResponse('POST', (r) => (answer = r._answer('the answer')));
  if (value === undefined || value === null) res.sendStatus(204);
  else if (typeof value === 'number') res.json(value);
  else res.send(value);
  answer.value = value;
  return answer;
}

function cloudEventRunner(fn) {
  return {
    web: (h) => {
      const got = ceFromWeb(h);
      if (got.bad) return Promise.resolve(got.bad);
      return runCloudEvent(fn, got.event).then(ceAnswer);
    },
    direct: (params) => {
      const problem = ceProblem(params);
      if (problem) return Promise.reject(new ReplyError(`the params must be ${CE_EXPECTED}; ${problem}`));
      return runCloudEvent(fn, ceStructured(params));
    },
  };
}
