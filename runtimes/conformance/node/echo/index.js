'use strict';
// The conformance suite's json function (runtimes/conformance/README.md).
module.exports = async (params) => {
  console.log('echo', params.n);
  if (params.ms) await new Promise((r) => setTimeout(r, params.ms));
  if (params.fail) throw new Error('boom on purpose');
  return { n: params.n, call: process.env.ZFAAS_CALL ?? null, greeting: process.env.GREETING ?? null };
};
