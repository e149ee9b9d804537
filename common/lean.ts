// Imported first by every process that uses dockerode. A node runs several miniworkers, so each megabyte
// counts several times: dockerode loads an SSH client (for ssh:// engines) and a gRPC stack (for BuildKit
// sessions) that a miniworker, which only talks to the local engine's unix socket, never uses. Their
// module-cache entries are filled with empty stand-ins so they are never loaded (about 14 MB per process).
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
for (const name of ['ssh2', '@grpc/grpc-js', '@grpc/proto-loader']) {
  try {
    const path = require.resolve(name);
    require.cache[path] ??= { id: path, filename: path, loaded: true, exports: {} } as NodeJS.Module;
  } catch {
    // not installed: nothing to keep out
  }
}
