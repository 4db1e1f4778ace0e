import { describe, expect, it } from 'vitest';
import type { Provider } from '../provider.js';
import { orderTargets, type RouteTarget } from './routed-provider.js';
import { prng } from '../../../test/support/prng.js';


const target = (upstream: string, weight: number, priority: number): RouteTarget => ({ provider: {} as Provider, upstream, model: 'm', weight, priority, circuit: undefined, kind: 'openai' });

describe('orderTargets', () => {
  it('tries lower priorities first, and balances equal priorities by weight', () => {
    const targets = [target('backup', 1, 2), target('a', 3, 0), target('b', 1, 0)];
    const random = prng(20261201);
    const first = { a: 0, b: 0, backup: 0 };
    const N = 4000;
    for (let i = 0; i < N; i++) {
      const order = orderTargets(targets, random);
      expect(order.at(-1)!.upstream).toBe('backup');
      first[order[0]!.upstream as 'a' | 'b']++;
    }
    expect(first.backup).toBe(0);
    // 3 : 1 within two percentage points.
    expect(first.a / N).toBeGreaterThan(0.73);
    expect(first.a / N).toBeLessThan(0.77);
  });
});
