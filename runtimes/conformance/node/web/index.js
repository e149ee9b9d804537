'use strict';
// The conformance suite's lambda function (runtimes/conformance/README.md).
exports.handler = async (event) => {
  if (event.rawPath === '/bad') return { statusCode: 'abc' };
  const name = (event.queryStringParameters && event.queryStringParameters.name) || 'nobody';
  return { statusCode: 201, headers: { 'content-type': 'text/plain', 'x-path': event.rawPath }, body: 'hello ' + name };
};
