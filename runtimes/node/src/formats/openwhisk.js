// Apache OpenWhisk web actions: main(args) with the __ow_* fields, and the response it makes of an answer.
// A web action's arguments: query parameters, then the body's (a JSON object or a form), then __ow_*.
function owArgs(h) {
  const args = parseQuery(h.query, 'last');
  if (h.body) {
    const b = eventBody(h);
    if (!b.base64) {
      const mt = mediaType(h.headers['content-type']);
      if (mt === 'application/json' || mt.endsWith('+json')) {
        let v = null;
        try {
          v = JSON.parse(b.text);
        } catch (_) {
          /* not an object: only in __ow_body */
        }
        if (v && typeof v === 'object' && !Array.isArray(v)) assignParams(args, v);
      } else if (mt === 'application/x-www-form-urlencoded') assignParams(args, parseQuery(b.text, 'last'));
    }
    args.__ow_body = b.text;
  }
  args.__ow_method = h.method.toLowerCase();
  args.__ow_headers = h.headers;
  args.__ow_path = h.path === '/' ? '' : h.path;
  args.__ow_query = h.query;
  return args;
}

function owResponse(v) {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || !('statusCode' in v || 'headers' in v || 'body' in v))
    return jsonAnswer(v, JSON.stringify(v === undefined ? {} : v));
  const explicit = v.statusCode === undefined || v.statusCode === null ? 0 : statusOf(v.statusCode, 'statusCode');
  const headers = {};
  addHeaders(headers, v.headers, 'headers', true);
  const ct = headers['content-type'];
  const body = v.body;
  let buf = EMPTY;
  if (typeof body === 'string') {
    const mt = mediaType(ct);
    if (isBinary(mt)) buf = fromBase64(body, `body is not valid base64 (content-type ${mt} is binary: its body must be base64)`);
    else {
      buf = Buffer.from(body, 'utf8');
      if (ct === undefined && buf.length) headers['content-type'] = 'text/html; charset=utf-8';
    }
  } else if (body !== undefined && body !== null) {
    buf = Buffer.from(JSON.stringify(body) || '', 'utf8');
    if (ct === undefined) headers['content-type'] = 'application/json';
  }
  return { status: explicit || (buf.length ? 200 : 204), headers, body: buf };
}

function callOne(fn, arg) {
  return new Promise((resolve, reject) => {
    current = { reject };
    Promise.resolve(fn(arg)).then(resolve, reject);
  }).finally(() => {
    current = null;
  });
}
