'use strict';
// zfaas example: the smallest node function. Deploy with the built-in "node" runtime.
module.exports = async (params) => ({ hello: (params && params.name) || 'world' });
