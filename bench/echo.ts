// A bare express JSON echo in its own process: the floor any HTTP FaaS sits on, the baseline the
// benchmarks compare zfaas with.
import { spawn } from 'node:child_process';
import { freePort, ROOT } from '../test/helpers/platform.js';

export async function startEcho(): Promise<{ url: string; pid: number; stop(): void }> {
  const port = await freePort();
  const src = `import express from 'express';
const app = express(); app.use(express.json());
app.post('/echo', (req, res) => res.json(req.body));
app.listen(${port}, '127.0.0.1', () => console.log('up'));`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', src], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((res) => child.stdout!.once('data', () => res()));
  return { url: `http://127.0.0.1:${port}/echo`, pid: child.pid!, stop: () => child.kill() };
}
