// A loader under test, spoken to over its stdin/stdout line (the lines it speaks on the node's socket): each
// reply parsed and checked against the node's schemas, refusing any field they do not declare.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { expect } from 'vitest';
import { z } from 'zod';
import {
  ChunkSchema,
  HeadSchema,
  HelloSchema,
  LoadedSchema,
  LoaderErrorSchema,
  PongSchema,
  ResultSchema,
  SecretsSetSchema,
  expectedReply,
  type LoaderRequest,
} from '../../protocol/loader.js';

// The node's schemas, refusing any field they do not declare: what a loader sends, the node must know of.
export const StrictReply = z.discriminatedUnion('op', [
  HelloSchema.strict(),
  LoadedSchema.strict(),
  ResultSchema.strict(),
  HeadSchema.strict(),
  ChunkSchema.strict(),
  PongSchema.strict(),
  SecretsSetSchema.strict(),
  LoaderErrorSchema.strict(),
]);
export type Reply = z.infer<typeof StrictReply>;

export class Speaker {
  private readonly lines: string[] = [];
  private waiting?: (line: string | undefined) => void;
  private ended = false;
  stderr = '';

  constructor(private readonly proc: ChildProcessWithoutNullStreams) {
    createInterface({ input: proc.stdout, crlfDelay: Infinity }).on('line', (l) => this.push(l));
    proc.stdout.on('end', () => {
      this.ended = true;
      this.waiting?.(undefined);
    });
    proc.stderr.on('data', (b: Buffer) => (this.stderr += b.toString()));
  }

  private push(line: string): void {
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = undefined;
      w(line);
    } else this.lines.push(line);
  }

  /** The next line, parsed and checked against the strict schemas. */
  async next(): Promise<Reply> {
    const line = this.lines.shift() ?? (this.ended ? undefined : await new Promise<string | undefined>((res) => (this.waiting = res)));
    if (line === undefined) throw new Error(`the loader ended its output; its stderr: ${this.stderr.slice(-2000)}`);
    return StrictReply.parse(JSON.parse(line));
  }

  send(msg: LoaderRequest | Record<string, unknown> | string): void {
    this.proc.stdin.write((typeof msg === 'string' ? msg : JSON.stringify(msg)) + '\n');
  }

  /** A request and its reply, which must be the kind the node expects for it. */
  async ask(msg: LoaderRequest): Promise<Reply> {
    this.send(msg);
    const r = await this.next();
    expect(r.op).toBe(expectedReply[msg.op]);
    return r;
  }

  async end(): Promise<number | null> {
    const exited = new Promise<number | null>((res) => this.proc.once('exit', (code) => res(code)));
    this.proc.stdin.end();
    return exited;
  }
}

/** A loader in warm mode without ZFAAS_LINE (so it speaks on stdin/stdout), started in `cwd`. */
export function spawnLoader(command: string[], cwd: string, env: Record<string, string> = {}): Speaker {
  const all: NodeJS.ProcessEnv = { ...process.env, PYTHONDONTWRITEBYTECODE: '1', ...env };
  delete all.ZFAAS_LINE;
  return new Speaker(spawn(command[0]!, command.slice(1), { cwd, env: all, stdio: ['pipe', 'pipe', 'pipe'] }));
}
