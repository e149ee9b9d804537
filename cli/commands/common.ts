// What every client command shares: its dependencies (passed in, so tests and other front-ends can
// swap them), the action wrapper that turns any failure into one line and an exit code, and parsers.
import { InvalidArgumentError, type Command } from 'commander';
import type { Readable } from 'node:stream';
import { ApiClient } from '../client/api.js';
import { resolveConfig, type ClientConfig, type Env } from '../client/config.js';
import { describeFailure, printable } from '../client/errors.js';
import type { Output } from '../client/output.js';

export interface Deps {
  out: Output;
  env: Env;
  stdin: Readable & { isTTY?: boolean };
  /** The configuration for this command: its own and its parents' --api/--token/--namespace, env, config file. */
  config(cmd: Command): Promise<ClientConfig>;
  /** An API client built from config(cmd). */
  client(cmd: Command): Promise<ApiClient>;
  setExitCode(code: number): void;
}

export function makeDeps(io: {
  out: Output;
  env: Env;
  stdin: Deps['stdin'];
  fetchFn?: typeof fetch;
  setExitCode: (code: number) => void;
}): Deps {
  const config = (cmd: Command): Promise<ClientConfig> => {
    const o = cmd.optsWithGlobals<{ api?: string; token?: string; namespace?: string }>();
    return resolveConfig({ api: o.api, token: o.token, namespace: o.namespace }, io.env);
  };
  return {
    out: io.out,
    env: io.env,
    stdin: io.stdin,
    config,
    client: async (cmd) => {
      const c = await config(cmd);
      return new ApiClient(c.api, c.token, io.fetchFn, c.namespace);
    },
    setExitCode: io.setExitCode,
  };
}

/**
 * Wraps a command's action: failures print "zfaas: MESSAGE" on stderr and set the exit code. Commander
 * passes (...args, options, command); the wrapper keeps that shape.
 */
export function act<A extends unknown[]>(deps: Deps, fn: (...args: A) => Promise<number | void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      const code = await fn(...args);
      if (code) deps.setExitCode(code);
    } catch (e) {
      const f = describeFailure(e);
      deps.out.note(`zfaas: ${printable(f.message)}`);
      deps.setExitCode(f.exitCode);
    }
  };
}

/** Appends the Example(s) section every command's --help carries. */
export function examples(cmd: Command, lines: string[]): Command {
  const title = lines.length > 1 ? 'Examples' : 'Example';
  return cmd.addHelpText('after', `\n${title}:\n${lines.map((l) => `  ${l}`).join('\n')}`);
}

/** A client command: usage errors end with a short hint instead of the whole help text. */
export function clientCommand(parent: Command, spec: string, description: string): Command {
  const name = spec.split(' ')[0] ?? spec;
  return parent.command(spec).description(description).showHelpAfterError(`(run "zfaas ${name} --help" for usage and examples)`);
}

export const positiveInt =
  (what: string) =>
  (v: string): number => {
    if (!/^\d+$/.test(v) || Number(v) < 1) throw new InvalidArgumentError(`${what} must be a whole number from 1`);
    return Number(v);
  };

export const wholeNumber =
  (what: string) =>
  (v: string): number => {
    if (!/^\d+$/.test(v)) throw new InvalidArgumentError(`${what} must be a whole number from 0`);
    return Number(v);
  };

export const positiveNumber =
  (what: string) =>
  (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${what} must be a positive number`);
    return n;
  };

export const collect = (v: string, prev: string[] = []): string[] => [...prev, v];
