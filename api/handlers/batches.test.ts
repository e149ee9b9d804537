// The items of a batch are held to what the params of one call may be: no deeper, no larger, each refusal
// naming the item.
import { describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH } from '../../common/json-depth.js';
import { checkItems } from './batches.js';

const deep = (n: number): unknown => (n === 0 ? 1 : { a: deep(n - 1) });

describe('checkItems', () => {
  it('takes items a single call would take', () => {
    expect(() => checkItems([{ n: 1 }, [1, 2], 'x', null, deep(MAX_JSON_DEPTH - 1)])).not.toThrow();
  });

  it('refuses an item nested deeper than a call’s params may be, naming it', () => {
    expect(() => checkItems([{ n: 1 }, deep(MAX_JSON_DEPTH + 5)])).toThrow(
      expect.objectContaining({ status: 400, message: expect.stringMatching(/^item 1 of the batch: invalid params: nested more than/) }),
    );
  });

  it('refuses an item larger than a call’s params may be', () => {
    expect(() => checkItems([{ n: 1 }, { n: 2 }, 'x'.repeat(1024 * 1024)])).toThrow(
      expect.objectContaining({
        status: 413,
        message: expect.stringMatching(/^item 2 of the batch: a call's params are at most 1048576 bytes/),
      }),
    );
  });
});
