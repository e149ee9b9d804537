// AWS Lambda behind API Gateway: the HTTP API event (payload 2.0), the REST API event (payload 1.0), the
// context, and the response API Gateway makes of a Lambda's answer.
const ACCOUNT = '000000000000';

// What a Lambda context says of the function: fixed at load.
function lambdaInfo() {
  const name = process.env.ZFAAS_FUNCTION || process.env.AWS_LAMBDA_FUNCTION_NAME || 'function';
  const version = process.env.ZFAAS_FUNCTION_VERSION || '$LATEST';
  const d = new Date();
  let host = 'zfaas';
  try {
    host = require('os').hostname();
  } catch (_) {
    /* keep */
  }
  return {
    name,
    version,
    arn: `arn:aws:lambda:${process.env.AWS_REGION || 'local'}:${ACCOUNT}:function:${name}`,
    memory: process.env.ZFAAS_MEMORY || '128',
    group: `/aws/lambda/${name}`,
    stream: `${d.getUTCFullYear()}/${pad2(d.getUTCMonth() + 1)}/${pad2(d.getUTCDate())}/[${version}]${host}`,
  };
}

const requestId = (id) => process.env.ZFAAS_CALL || String(id);

function lambdaContext(info, rid) {
  const end = callEnd();
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: info.name,
    functionVersion: info.version,
    invokedFunctionArn: info.arn,
    memoryLimitInMB: info.memory,
    awsRequestId: rid,
    logGroupName: info.group,
    logStreamName: info.stream,
    identity: undefined,
    clientContext: undefined,
    getRemainingTimeInMillis: () => Math.max(0, end - Date.now()),
    done: undefined, // set by runLambda
    succeed: undefined,
    fail: undefined,
  };
}

// Runs a Lambda handler: its answer is the first of callback(err, value), context.done/succeed/fail, the
// promise it returns, or (with fewer than 3 parameters) the value it returns.
function runLambda(fn, event, ctx) {
  return new Promise((resolve, reject) => {
    current = { reject };
    let done = false;
    const settle = (err, value) => {
      if (done) return;
      done = true;
      if (err !== undefined && err !== null) reject(err);
      else resolve(value);
    };
    ctx.done = settle;
    ctx.succeed = (value) => settle(null, value);
    ctx.fail = (err) => settle(err === undefined || err === null ? new Error('context.fail()') : err);
    try {
      const r = fn(event, ctx, settle);
      if (r && typeof r.then === 'function')
        r.then(
          (v) => settle(null, v),
          (e) => settle(e === undefined || e === null ? new Error('rejected') : e),
        );
      else if (fn.length < 3) settle(null, r);
    } catch (e) {
      settle(e === undefined || e === null ? new Error('threw ' + e) : e);
    }
  }).finally(() => {
    current = null;
  });
}

function hostOf(h) {
  const host = (h.headers.host || 'localhost').replace(/:\d+$/, '');
  return { domainName: host, domainPrefix: host.split('.')[0] };
}

// API Gateway HTTP API, payload format 2.0
function lambdaEventV2(h, rid, info) {
  const now = Date.now();
  const headers = {};
  let cookies = null;
  for (const k in h.headers) {
    if (k === 'cookie') cookies = h.headers[k].split(/;\s*/).filter(Boolean);
    else setKey(headers, k, h.headers[k]);
  }
  const ev = { version: '2.0', routeKey: '$default', rawPath: h.path, rawQueryString: h.query };
  if (cookies && cookies.length) ev.cookies = cookies;
  ev.headers = headers;
  if (h.query) ev.queryStringParameters = parseQuery(h.query, ',');
  const { domainName, domainPrefix } = hostOf(h);
  ev.requestContext = {
    accountId: ACCOUNT,
    apiId: info.name,
    domainName,
    domainPrefix,
    http: { method: h.method, path: h.path, protocol: 'HTTP/1.1', sourceIp: h.sourceIp, userAgent: headers['user-agent'] || '' },
    requestId: rid,
    routeKey: '$default',
    stage: '$default',
    time: clfTime(now),
    timeEpoch: now,
  };
  if (h.body) {
    const b = eventBody(h);
    ev.body = b.text;
    ev.isBase64Encoded = b.base64;
  } else ev.isBase64Encoded = false;
  return ev;
}

// API Gateway REST API (proxy resource), payload format 1.0
function lambdaEventV1(h, rid, info) {
  const now = Date.now();
  let headers = null;
  let multiHeaders = null;
  for (const k in h.headers) {
    if (!headers) {
      headers = {};
      multiHeaders = {};
    }
    setKey(headers, k, h.headers[k]);
    setKey(multiHeaders, k, [h.headers[k]]);
  }
  let query = null;
  let multiQuery = null;
  if (h.query) {
    query = {};
    multiQuery = {};
    for (const [k, v] of new URLSearchParams(h.query)) {
      setKey(query, k, v);
      if (hasOwn(multiQuery, k)) multiQuery[k].push(v);
      else setKey(multiQuery, k, [v]);
    }
  }
  const root = h.path === '/' || h.path === '';
  const resource = root ? '/' : '/{proxy+}';
  const b = h.body ? eventBody(h) : null;
  const { domainName, domainPrefix } = hostOf(h);
  const nulls = { accessKey: null, accountId: null, caller: null, cognitoAuthenticationProvider: null, cognitoAuthenticationType: null };
  return {
    resource,
    path: h.path,
    httpMethod: h.method,
    headers,
    multiValueHeaders: multiHeaders,
    queryStringParameters: query,
    multiValueQueryStringParameters: multiQuery,
    pathParameters: root ? null : { proxy: h.path.slice(1) },
    stageVariables: null,
    requestContext: {
      accountId: ACCOUNT,
      apiId: info.name,
      domainName,
      domainPrefix,
      extendedRequestId: rid,
      httpMethod: h.method,
      identity: {
        ...nulls,
        cognitoIdentityId: null,
        cognitoIdentityPoolId: null,
        principalOrgId: null,
        sourceIp: h.sourceIp,
        user: null,
        userAgent: h.headers['user-agent'] || null,
        userArn: null,
      },
      path: h.path,
      protocol: 'HTTP/1.1',
      requestId: rid,
      requestTime: clfTime(now),
      requestTimeEpoch: now,
      resourceId: null,
      resourcePath: resource,
      stage: '$default',
    },
    body: b ? b.text : null,
    isBase64Encoded: b ? b.base64 : false,
  };
}

// The response API Gateway makes of a Lambda's answer.
function lambdaResponse(v, v1) {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || !('statusCode' in v)) {
    if (v1)
      throw malformed(
        `statusCode is missing: payload 1.0 needs {statusCode, headers, body} (API Gateway: "Malformed Lambda proxy response"), got ${describe(v)}`,
      );
    // payload 2.0: the value is the body, as JSON (a string as it is)
    return jsonAnswer(v, typeof v === 'string' ? v : JSON.stringify(v));
  }
  const status = statusOf(v.statusCode, 'statusCode');
  const headers = {};
  addHeaders(headers, v.headers, 'headers', false);
  if (v1 && v.multiValueHeaders !== undefined && v.multiValueHeaders !== null) {
    const multi = v.multiValueHeaders;
    if (typeof multi !== 'object' || Array.isArray(multi)) throw malformed(`multiValueHeaders must be an object, got ${describe(multi)}`);
    for (const name of Object.keys(multi)) {
      const key = headerName(name);
      if (!Array.isArray(multi[name]))
        throw malformed(`multiValueHeaders[${JSON.stringify(name)}] must be an array, got ${describe(multi[name])}`);
      headers[key] = headerValue(name, multi[name], false); // API Gateway: these win over `headers`
    }
  }
  if (!v1 && v.cookies !== undefined && v.cookies !== null) {
    if (!Array.isArray(v.cookies) || v.cookies.some((c) => typeof c !== 'string'))
      throw malformed(`cookies must be an array of strings, got ${describe(v.cookies)}`);
    const set = headerValue('set-cookie', v.cookies, false);
    if (set.length) headers['set-cookie'] = headers['set-cookie'] === undefined ? set : [].concat(headers['set-cookie'], set);
  }
  const body = v.body;
  let buf = EMPTY;
  if (body !== undefined && body !== null) {
    if (typeof body !== 'string') throw malformed(`body must be a string, got ${describe(body)}`);
    if (v.isBase64Encoded === true) buf = fromBase64(body, 'isBase64Encoded is true but body is not valid base64');
    else buf = Buffer.from(body, 'utf8');
  }
  return { status, headers, body: buf };
}
