import { describe, expect, it } from 'vitest';
import { MODEL_LIST_RETRY_MS, MODEL_LIST_TTL_MS, ModelCatalog } from './model-catalog.js';

describe('ModelCatalog', () => {
  it('asks once for many concurrent callers, then not again until the list is stale', async () => {
    let now = 0;
    let asked = 0;
    const catalog = new ModelCatalog(async () => [{ id: `m${++asked}`, owned_by: 'up' }], () => now);
    const lists = await Promise.all([catalog.get(), catalog.get(), catalog.get()]);
    expect(asked).toBe(1);
    expect(lists).toEqual([[{ id: 'm1', owned_by: 'up' }], [{ id: 'm1', owned_by: 'up' }], [{ id: 'm1', owned_by: 'up' }]]);
    now += MODEL_LIST_TTL_MS - 1;
    await catalog.get();
    expect(asked).toBe(1);
    now += 1;
    expect(await catalog.get()).toEqual([{ id: 'm2', owned_by: 'up' }]);
  });

  it('keeps the last list when a fetch fails, and tries again only after a short wait', async () => {
    let now = 0;
    let fail = false;
    let asked = 0;
    const catalog = new ModelCatalog(async () => {
      asked++;
      if (fail) throw new Error('down');
      return [{ id: 'm', owned_by: 'up' }];
    }, () => now);
    await catalog.get();
    fail = true;
    now += MODEL_LIST_TTL_MS;
    expect(await catalog.get()).toEqual([{ id: 'm', owned_by: 'up' }]);
    expect(asked).toBe(2);
    now += MODEL_LIST_RETRY_MS - 1;
    await catalog.get();
    expect(asked).toBe(2);
    now += 1;
    await catalog.get();
    expect(asked).toBe(3);
  });
});
