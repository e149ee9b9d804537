// The one table of failures: each kind's status, web answer and exit code, and the kind of a record that
// predates kinds.
import { describe, expect, it } from 'vitest';
import { EXIT } from '../cli/client/errors.js';
import { failure, faultOf, FAULTS } from './faults.js';

describe('faults', () => {
  it('gives each kind the status, HTTP answer and CLI exit code its table says', () => {
    expect(failure('timeout', 'slow')).toEqual({ status: 'TIMEOUT', result: '', error: 'slow', fault: 'timeout' });
    expect(failure('response', 'malformed response: x')).toMatchObject({ status: 'ERROR', fault: 'response' });
    expect(FAULTS.response.http).toBe(502);
    expect(FAULTS.timeout.http).toBe(504);
    for (const f of Object.values(FAULTS)) expect(f.exit).toBe(f.status === 'TIMEOUT' ? EXIT.CALL_TIMEOUT : EXIT.CALL_ERROR);
  });

  it('reads a kind from a record, and tells one of a record from before kinds by its status', () => {
    expect(faultOf({ status: 'DONE' })).toBeUndefined();
    expect(faultOf({ status: 'RUNNING' })).toBeUndefined();
    expect(faultOf({ status: 'ERROR', fault: 'platform' })).toBe('platform');
    expect(faultOf({ status: 'ERROR' })).toBe('function');
    expect(faultOf({ status: 'ERROR', cancelled: true })).toBe('cancelled');
    expect(faultOf({ status: 'TIMEOUT' })).toBe('timeout');
  });
});
