// OpenFaaS's node templates: handler(event, context[, callback]) and its context.status().headers().succeed().
// The context of the OpenFaaS node templates.
class FaasContext {
  constructor(answer) {
    this.statusCode = 200;
    this.headerValues = {};
    this.cbCalled = 0;
    this.cb = answer;
  }

  status(code) {
    if (!code) return this.statusCode;
    this.statusCode = code;
    return this;
  }

  headers(value) {
    if (!value) return this.headerValues;
    this.headerValues = value;
    return this;
  }

  succeed(value) {
    this.cbCalled++;
    this.cb(undefined, value);
  }

  fail(value) {
    if (Number(this.statusCode) === 200) this.statusCode = 500;
    this.cbCalled++;
    this.cb(value);
  }
}

// Runs an OpenFaaS handler(event, context, callback): its answer is the first of succeed/fail/callback, or
// the value its promise gives when it called none of them.
function runOpenfaas(fn, event, method) {
  return new Promise((resolve, reject) => {
    current = { reject };
    let answered = false;
    const res = new WebResponse(method, () => {});
    const answer = (err, value) => {
      if (answered) return;
      answered = true;
      try {
        if (err) res.status(ctx.statusCode).send(typeof err.toString === 'function' ? err.toString() : String(err));
        else {
          const hv = ctx.headerValues;
          if (hv !== undefined && hv !== null && (typeof hv !== 'object' || Array.isArray(hv)))
            throw malformed(`headers must be an object, got ${describe(hv)}`);
          if (hv) res.set(hv);
          res.status(ctx.statusCode);
          if (value !== null && typeof value === 'object' && !(value instanceof Uint8Array)) {
            if (res.get('Content-Type') === undefined) res.set('Content-Type', 'application/json');
            res.send(JSON.stringify(value));
          } else res.send(typeof value === 'number' ? String(value) : value);
        }
        resolve(res._answer('status'));
      } catch (e) {
        reject(e);
      }
    };
    const ctx = new FaasContext(answer);
    try {
      const r = fn(event, ctx, answer);
      Promise.resolve(r).then(
        (v) => ctx.cbCalled || ctx.succeed(v),
        (e) => answered || ((answered = true), reject(e)),
      );
    } catch (e) {
      answered = true;
      reject(e);
    }
  }).finally(() => {
    current = null;
  });
}
