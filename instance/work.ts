// A call the node accepted, as its pool and the container sessions carry it.
import type { FunctionMeta, Policy, Runtime } from '../common/model.js';
import type { HttpRequest } from '../protocol/loader.js';
import type { SecretFile } from '../protocol/worker.js';
import type { StreamSink } from './stream-relay.js';

export interface Work {
  callNum: number;
  params: unknown;
  fn: FunctionMeta;
  runtime: Runtime;
  treeDir: string;
  policy: Policy;
  replica?: number; // redundant calls: which of the two runs
  attempt?: number; // which run of the call this is (ZFAAS_ATTEMPT)
  http?: HttpRequest; // a call through the function's web path
  spend?: boolean; // its container is removed after it (a web call under policy none)
  secrets?: SecretFile[]; // the secrets its function names, current when the node accepted it
  stream?: StreamSink; // a web call whose caller takes its answer as it is written (protocol/broker.ts)
}
