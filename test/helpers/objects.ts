// Objects the unit tests make again and again: a node runtime and a deployed function version.
import { FunctionSettingsSchema, type FunctionMeta, type Runtime } from '../../common/model.js';

export const nodeRuntime: Runtime = {
  name: 'node',
  image: 'zfaas/node:latest',
  path: '/ws',
  dependencies: '',
  run: 'node index.js',
} as Runtime;

// A version of a function on the node runtime, with these settings (defaults for the rest).
export const fnMeta = (name: string, version = 1, settings: Record<string, unknown> = {}): FunctionMeta => ({
  functionName: name,
  runtimeName: 'node',
  version,
  digest: 'a'.repeat(64),
  size: 1,
  format: 'tar.gz',
  createdAt: '2026-11-23T00:00:00.000Z',
  settings: FunctionSettingsSchema.parse(settings),
});
