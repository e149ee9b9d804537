#!/usr/bin/env node
/*
 * zfaas node loader: keeps a function warm inside its container. No dependencies; Node 18+.
 * Built from the modules in runtimes/node/src by `npm run loaders` (runtimes/build/loaders.ts): edit
 * those, not the built runtimes/node/loader.js.
 *
 * Warm mode (default) speaks the loader protocol (version PROTOCOL): protocol/loader.ts is the spec (messages,
 * limits, transport). In short: with $ZFAAS_LINE set it dials that unix socket (retrying for up to 5 s,
 * then exit 1) and exits 0 when the connection ends; without it, it speaks on stdin/stdout and exits 0
 * at the end of stdin. Either way it says {"op":"hello","v":PROTOCOL,"pid":N} first, then answers load, call,
 * secrets and ping one at a time; a request it cannot read gets {"op":"error"} and it carries on. A call's
 * `env` is its own in process.env, a view of its variables over the shared ones, for that call only (never
 * set in the process's environment, version 4). After a load with concurrency N > 1 (version 3) calls run
 * at once, each in its own AsyncLocalStorage context (its own view; its output goes to its own logs), and
 * `cancel` {id} answers one running call cancelled. What the function writes (console.*,
 * process.stdout/stderr) during a call is captured into "logs"; outside a call it goes to stderr;
 * never to the protocol.
 *
 * Run-once mode (`loader.js --once`, the `none` policy): function dir = $ZFAAS_DIR or the cwd,
 * handler = $ZFAAS_HANDLER if set, format = $ZFAAS_FORMAT if set (else auto; always a call without
 * `http`, see Formats below); params = all of stdin (else $ZFAAS_PARAMS, else {}).
 * Prints the result string to stdout (no newline added) and exits 0; the function's output goes to
 * stderr; an exception prints the stack to stderr and exits 1; no handler file exits 2.
 *
 * Entry: handler "FILE.EXPORT" (last dot separates; FILE may hold slashes) -> FILE(.js|.cjs|.mjs)
 * and that export; else package.json "main", else index.js. Exports: module.exports = fn,
 * exports.handler, exports.main, ESM default. Handlers of arity 2 get a Lambda-like context
 * (getRemainingTimeInMillis counts down to $ZFAAS_DEADLINE, else to $ZFAAS_TIMEOUT seconds after the
 * call started), of arity 3 also a callback.
 *
 * Formats (protocol/loader.ts, "Web calls"): `load` names the function's calling convention (`format`,
 * default auto) and `loaded` says which one it got. auto decides only where the shape is unambiguous: a
 * plain script (exports nothing, defines a top-level `function main`) -> openwhisk; an exported function
 * whose first parameters are (req, res) or (request, response) -> gcf; anything else -> json.
 *   json       handler(params) as above; a call's `http` is not used (the node made params of it).
 *   lambda     AWS Lambda handler(event, context[, callback]) (async, callback, context.done/succeed/fail
 *              or a plain return). Web calls get an API Gateway HTTP API event, payload 2.0 (`lambda-v1`:
 *              the REST API event, payload 1.0); an answer with statusCode is the response, any other
 *              value is 200 application/json (payload 1.0: a malformed answer).
 *   openwhisk  main(args); web calls: args = query + JSON/form body parameters + __ow_method, __ow_headers,
 *              __ow_path, __ow_query, __ow_body; an answer with statusCode/headers/body is the response
 *              (a string body is base64 under a binary content-type), any other value is 200 JSON. Plain
 *              scripts load: their source is compiled with a line that exports main.
 *   openfaas   the OpenFaaS node templates: handler(event, context[, callback]), event {body, headers,
 *              method, query, path}, context.status().headers().succeed(v)/.fail(v) or a returned value.
 *   gcf        Google Cloud Functions: (req, res), Express-like; the call ends when the response does
 *              (send, json, end, sendStatus, redirect), also after the function returned. A function
 *              registered with functions.cloudEvent gets a CloudEvent: a call's params (structured mode)
 *              or a web request (ce-* headers and the body as data, or a JSON body); a web caller gets its
 *              value (none: 204). Registered functions (functions.http / functions.cloudEvent, through the
 *              archive's own @google-cloud/functions-framework or, without one, a stand-in of that name)
 *              are found by name (the handler's, $FUNCTION_TARGET, the only one registered, or the
 *              deployed function's) and are gcf under auto.
 * Streamed answers (protocol version 3, stream.js): in a web call, a handler wrapped by
 * awslambda.streamifyResponse (lambda; auto finds it) and gcf's res.write before res.end send the head at
 * the first write, then each write as a chunk, before the result (whose http.body is then empty).
 * Web answers come back as `http` {status, headers, body (base64)}; a response the function shaped wrongly
 * fails the call, "malformed response: <what>". A call without `http` passes params as the event (openfaas:
 * event.body; gcf: req.body of a POST) and answers the value (openfaas, gcf: the body; a status >= 400 fails).
 */
'use strict';
