'use strict';
// The conformance suite's function for several calls at once (runtimes/conformance/README.md).
module.exports = async (params) => {
  console.log('start', params.n, process.env.ZFAAS_CALL);
  await new Promise((resolve) => setTimeout(resolve, params.ms || 0));
  console.log('end', params.n, process.env.ZFAAS_CALL);
  if (params.fail) throw new Error(`boom ${params.n}`);
  return { n: params.n, call: process.env.ZFAAS_CALL ?? null };
};
