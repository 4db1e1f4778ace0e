import { describe, expect, it } from 'vitest';
import { RandomIds } from './ids.js';

describe('RandomIds', () => {
  it('gives hex ids of the asked length that do not repeat across pool refills', () => {
    const ids = new RandomIds();
    const seen = new Set<string>();
    // 4 KiB of pool is 341 ids of 12 bytes: this crosses several refills, including a partial one.
    for (let i = 0; i < 2000; i++) {
      const id = ids.hex(12);
      expect(id).toMatch(/^[0-9a-f]{24}$/);
      seen.add(id);
    }
    expect(seen.size).toBe(2000);
    expect(ids.hex(6)).toMatch(/^[0-9a-f]{12}$/);
  });
});
