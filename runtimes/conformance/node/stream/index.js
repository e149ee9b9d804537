// The conformance suite's streaming function (runtimes/conformance/README.md): Lambda response streaming,
// three writes (and, with ?big, one longer than a chunk carries; with ?fail, an error after them).
exports.handler = awslambda.streamifyResponse(async (event, responseStream) => {
  const out = awslambda.HttpResponseStream.from(responseStream, { statusCode: 202, headers: { 'content-type': 'text/plain' } });
  for (const part of ['one ', 'two ', 'three']) out.write(part);
  if (event.rawQueryString === 'big') out.write(Buffer.alloc(300 * 1024, 'x'));
  if (event.rawQueryString === 'fail') throw new Error('boom mid-stream');
  out.end();
});
