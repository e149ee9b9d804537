// Which format runs a call: the web form with `http`, the direct one without.
// A call without `http` to a function that answers HTTP: the body is the result; a status >= 400 fails.
function bodyResult(r) {
  const text = r.body.toString('utf8');
  if (r.status >= 400)
    throw new ReplyError(`the function answered ${r.status}: ${text.length > 2000 ? text.slice(0, 2000) + '...' : text}`);
  return text;
}

// What a format does with a call: web(http, id) -> {status, headers, body: Buffer, value?} for calls with
// `http` (null: the format does not use it), direct(params, id) -> the value for the others. `kind` tells
// gcf's two forms apart: 'http' (req, res) or 'cloudevent' (a registered CloudEvent function).
function makeRunner(fn, format, kind) {
  switch (format) {
    case 'lambda':
    case 'lambda-v1': {
      const info = lambdaInfo();
      const v1 = format === 'lambda-v1';
      const event = v1 ? lambdaEventV1 : lambdaEventV2;
      return {
        web: (h, id) => {
          const rid = requestId(id);
          if (isStreamified(fn)) return runStreamingLambda(fn, event(h, rid, info), lambdaContext(info, rid), true);
          return runLambda(fn, event(h, rid, info), lambdaContext(info, rid)).then((v) => lambdaResponse(v, v1));
        },
        direct: (params, id) => (isStreamified(fn) ? runStreamingLambda : runLambda)(fn, params, lambdaContext(info, requestId(id))),
      };
    }
    case 'openwhisk':
      return { web: (h) => callOne(fn, owArgs(h)).then(owResponse), direct: (params) => callOne(fn, params) };
    case 'openfaas':
      return {
        web: (h) => {
          const b = expressBody(h, 'text/plain'); // the template's default type
          if (b.bad) return Promise.resolve(b.bad);
          const event = { body: b.body, headers: h.headers, method: h.method, query: parseQuery(h.query, 'array'), path: h.path };
          return runOpenfaas(fn, event, h.method);
        },
        direct: (params) => runOpenfaas(fn, { body: params, headers: {}, method: 'POST', query: {}, path: '/' }, 'POST').then(bodyResult),
      };
    case 'gcf':
      if (kind === 'cloudevent') return cloudEventRunner(fn);
      return {
        web: (h) => {
          const b = expressBody(h, '');
          if (b.bad) return Promise.resolve(b.bad);
          return runGcf(fn, new WebRequest(h, b.body, b.raw, parseQuery(h.query, 'array')));
        },
        direct: (params) => {
          const raw = Buffer.from(JSON.stringify(params), 'utf8');
          const h = { method: 'POST', path: '/', query: '', headers: { 'content-type': 'application/json' }, sourceIp: '' };
          return runGcf(fn, new WebRequest(h, params, raw, {})).then(bodyResult);
        },
      };
    default:
      return { web: null, direct: (params, id) => invoke(fn, params, id) };
  }
}
