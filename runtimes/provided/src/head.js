#!/usr/bin/env node
/*
 * zfaas provided loader: serves the AWS Lambda Runtime API inside a `provided` runtime's container, for a
 * function whose archive holds an executable `bootstrap` (a custom runtime, as Lambda's provided.al2023
 * runs it). No dependencies; Node 18+. Built from runtimes/provided/src and the node loader's shared
 * modules by `npm run loaders` (runtimes/build/loaders.ts): edit those, not runtimes/provided/loader.js.
 *
 * It speaks the loader protocol (protocol/loader.ts) with the node as the node loader does. `load` starts the
 * function's bootstrap as its child, with AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001, LAMBDA_TASK_ROOT (the
 * function's folder), _HANDLER (the handler setting) and AWS_LAMBDA_FUNCTION_NAME/_VERSION/_MEMORY_SIZE,
 * and answers once the bootstrap asks for its first invocation (or fails, if it posts to /init/error or
 * exits first). Each call is one invocation: GET /2018-06-01/runtime/invocation/next answers with the
 * params as the event and the headers Lambda-Runtime-Aws-Request-Id, Lambda-Runtime-Deadline-Ms,
 * Lambda-Runtime-Invoked-Function-Arn and Lambda-Runtime-Trace-Id; POST .../invocation/ID/response is the
 * call's result, .../invocation/ID/error its failure. One invocation at a time; the bootstrap stays warm
 * between calls, and one that exited is started again for the next call. What it prints is the call's logs.
 * Run-once mode (`--once`) serves one invocation of the params on stdin and prints the response.
 */
'use strict';
