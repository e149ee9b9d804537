// `zfaas deploy`'s --memory and --timeout: read like the API reads them, sent as plain numbers, and a bad
// one refused locally (exit 2, the API's words) before anything is packed or sent.
import { describe, expect, it } from 'vitest';
import { EXIT } from '../client/errors.js';
import { settingsFields } from './functions.js';
import { runCli } from '../../test/helpers/cli-run.js';

describe('deploy settings', () => {
  it('sends sizes and durations as the plain numbers the API stores', () => {
    expect(settingsFields({ memory: '1g', timeout: '1m30s', retry: true })).toEqual([
      ['timeout', '90'],
      ['memory', '1024'],
    ]);
    expect(settingsFields({ memory: '128Mi', timeout: '30', retry: true })).toEqual([
      ['timeout', '30'],
      ['memory', '128'],
    ]);
  });

  it('sends --format, --public and --rate-limit as the fields format, public and rateLimit', () => {
    expect(settingsFields({ format: 'lambda', public: true, rateLimit: 200, retry: true })).toEqual([
      ['format', 'lambda'],
      ['public', 'true'],
      ['rateLimit', '200'],
    ]);
    expect(settingsFields({ public: false, retry: true })).toEqual([]);
  });

  async function deploy(...flags: string[]): Promise<{ code: number; notes: string[]; fetched: boolean }> {
    let fetched = false;
    const fetchFn = async (): Promise<Response> => {
      fetched = true;
      throw new Error('nothing may be sent');
    };
    // The path does not exist: a refusal that names the setting shows it was checked before packing.
    const r = await runCli(['deploy', 'fn', '/nonexistent/fn', '--runtime', 'node', ...flags], { fetchFn });
    return { code: r.code, notes: r.notes, fetched };
  }

  it('refuses a bad --memory or --timeout with exit 2 and the message the API would give, sending nothing', async () => {
    expect(await deploy('--memory', '12x')).toEqual({
      code: EXIT.USAGE,
      notes: ['zfaas: memory: expected a size such as 128, 128m, 128Mi or 1g (16 MiB to 8 GiB), got "12x"'],
      fetched: false,
    });
    expect(await deploy('--timeout', '500ms')).toEqual({
      code: EXIT.USAGE,
      notes: [
        'zfaas: timeout: expected a duration such as 30, 30s, 2m or 1m30s (whole seconds, 1 s to 15 min), got "500ms", which is not a whole number of seconds',
      ],
      fetched: false,
    });
  });
});
