// The console's usage view in a real browser (Debian's Chromium, driven by playwright-core), over a real Jarvis
// with its ledger and prices for the simulator: the last day per key and per model as GET /v1/usage tells it,
// the not-heard share of the output (an interrupted voice answer truncated to what was heard), a chart; a tenant's
// key sees only its own row; without a ledger, a short message instead of the tables.
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postChat, user } from './support/chat.js';
import { launchChromium } from './support/browser.js';
import { startJarvis, type TestJarvis } from './support/jarvis.js';

const PRICES = { 'jarvis-sim': { input: 1, output: 2 } };
const SIMULATOR = { tokensPerSec: 200, ttftMs: 20 };

let browser: Browser;
beforeAll(async () => {
  browser = await launchChromium();
}, 30_000);
afterAll(async () => {
  await browser?.close();
});

interface UsageRow {
  key?: string | null;
  model?: string;
  requests: number;
  input_tokens: number;
  output_tokens: number;
  delivered_tokens: number;
  not_heard_tokens: number;
  cost: number | null;
}

/** Reads a response body until `text` appears `times` times in it; returns what was read and the rest to come. */
async function readUntil(res: Response, text: string, times = 1): Promise<{ read: string; rest: () => Promise<string> }> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let read = '';
  while (read.split(text).length <= times) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the stream ended before ${text}: ${read.slice(-300)}`);
    read += decoder.decode(value, { stream: true });
  }
  const rest = async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return read;
      read += decoder.decode(value, { stream: true });
    }
  };
  return { read, rest };
}

/** A Chat Completions barge-in: a long answer streaming, and a second request of the same session. */
async function chatBargeIn(url: string, session: string, headers: Record<string, string> = {}): Promise<void> {
  const first = await postChat(url, { stream: true, messages: user('Long essay about rivers') }, { headers: { ...headers, 'x-session-id': session } });
  const streaming = await readUntil(first, '"content"');
  const second = await postChat(url, { stream: true, messages: user('2+2?') }, { headers: { ...headers, 'x-session-id': session } });
  expect(await second.text()).toContain('[DONE]');
  expect(await streaming.rest()).toContain('"cancelled"');
}

/**
 * The voice flow on the Responses API (docs/streaming.md): a long answer streaming, the person interrupts (the next
 * turn, same session), and the speech client says it played only the first few characters of the first.
 */
async function voiceBargeIn(url: string, session: string): Promise<void> {
  const post = (body: unknown) => fetch(`${url}/v1/responses`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-session-id': session }, body: JSON.stringify(body) });
  const first = await post({ model: 'jarvis-sim', stream: true, input: 'Long essay about lakes' });
  // Ten deltas delivered, of which the person heard three characters: most of the answer so far was not heard.
  const streaming = await readUntil(first, 'event: response.output_text.delta', 10);
  const id = /"id":"(resp_[0-9a-f]+)"/.exec(streaming.read)![1]!;
  expect((await post({ model: 'jarvis-sim', input: 'Wait, what about seas?' })).status).toBe(200);
  expect(await streaming.rest()).toContain('"interrupted"');
  const truncated = await fetch(`${url}/v1/responses/${id}/truncate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ heard_chars: 3 }) });
  expect(truncated.status).toBe(200);
}

async function usageOf(url: string, groupBy: 'key' | 'model', key?: string): Promise<UsageRow[]> {
  const res = await fetch(`${url}/v1/usage?group_by=${groupBy}`, { headers: key ? { authorization: `Bearer ${key}` } : {} });
  expect(res.status).toBe(200);
  return ((await res.json()) as { data: UsageRow[] }).data;
}

/** A table's body rows as the page shows them: the first cell, then the numbers. */
async function tableRows(page: Page, by: 'key' | 'model'): Promise<string[][]> {
  return page.locator(`.usage-table[data-by=${by}] tbody tr`).evaluateAll((trs) => trs.map((tr) => [...tr.children].map((c) => (c.textContent ?? '').trim())));
}

const count = (n: number) => n.toLocaleString('en-US');
/** A cost as the page prints it under a dollar (what a test spends): two significant digits. */
const dollars = (n: number) => new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD', maximumSignificantDigits: 2 }).format(n);

describe('the console\'s usage view', () => {
  let jarvis: TestJarvis;
  beforeAll(async () => {
    jarvis = await startJarvis({ simulator: SIMULATOR, prices: PRICES });
  });
  afterAll(async () => {
    await jarvis?.close();
  });

  it('shows the last day per key and per model, its cost, the share not heard, and a chart', async () => {
    // One answer heard whole, a chat barge-in, and a voice barge-in whose first answer was heard in part. (A chat
    // barge-in alone leaves nothing unheard here: the simulator stops generating when its stream is cancelled, so
    // what it generated was all delivered, and Chat Completions counts what was delivered as heard.)
    expect(await (await postChat(jarvis.url, { stream: true, messages: user('What is the capital of France?') }, { headers: { 'x-session-id': 'usage-whole' } })).text()).toContain('[DONE]');
    await chatBargeIn(jarvis.url, 'usage-chat');
    await voiceBargeIn(jarvis.url, 'usage-voice');
    const [byKey, byModel] = [await usageOf(jarvis.url, 'key'), await usageOf(jarvis.url, 'model')];
    expect(byKey).toHaveLength(1);
    expect(byKey[0]).toMatchObject({ key: null, requests: 5 });
    expect(byKey[0]!.not_heard_tokens).toBeGreaterThan(0);
    expect(byKey[0]!.cost).toBeGreaterThan(0);
    expect(byKey[0]!.cost).toBeLessThan(1);

    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    try {
      await page.goto(`${jarvis.url}/console`);
      const keyRows = page.locator('.usage-table[data-by=key] tbody tr');
      await keyRows.first().waitFor({ timeout: 15_000 });
      // Without keys there is one row, the lines without a key; the model table has the simulator's.
      const row = (r: UsageRow, name: string) => [
        name,
        count(r.requests),
        count(r.input_tokens),
        count(r.output_tokens),
        count(r.delivered_tokens),
        expect.stringMatching(new RegExp(`^${count(r.not_heard_tokens)} \\((\\d+(\\.\\d)?)%\\)$`)),
        dollars(r.cost!),
      ];
      await expect.poll(() => tableRows(page, 'key')).toEqual([row(byKey[0]!, '(no key)')]);
      await expect.poll(() => tableRows(page, 'model')).toEqual([row(byModel[0]!, 'jarvis-sim')]);
      expect(await keyRows.first().locator('td').first().textContent()).toBe('5');
      // Totals: the same sums, cost included.
      const total = await page.locator('.usage-table[data-by=key] tfoot tr.total').evaluate((tr) => [...tr.children].map((c) => (c.textContent ?? '').trim()));
      expect(total).toEqual(row(byKey[0]!, 'total'));
      // The headline: the share of the output generated but not heard, above 0%, and the day's cost.
      const notHeard = await page.locator('.usage [data-tile=not-heard] b').textContent();
      const pct = Number(/^(\d+(?:\.\d)?)%$/.exec(notHeard ?? '')?.[1]);
      expect(pct).toBeGreaterThan(0);
      expect(Math.abs(pct - (100 * byKey[0]!.not_heard_tokens) / byKey[0]!.output_tokens)).toBeLessThanOrEqual(0.5);
      expect(await page.locator('.usage [data-tile=cost] b').textContent()).toBe(dollars(byKey[0]!.cost!));
      expect(await page.locator('.usage [data-tile=requests] b').textContent()).toBe('5');
      // The chart: output tokens per key, heard and not heard.
      await page.locator('.usage-chart canvas').waitFor();
      expect(await page.locator('.usage-chart .u-legend').textContent()).toMatch(/not heard.*heard/);
      if (process.env.CONSOLE_USAGE_SCREENSHOT) await page.screenshot({ path: process.env.CONSOLE_USAGE_SCREENSHOT, fullPage: true });

      // Refreshed every few seconds: another answer shows up without a reload.
      expect(await (await postChat(jarvis.url, { stream: true, messages: user('And of Spain?') }, { headers: { 'x-session-id': 'usage-more' } })).text()).toContain('[DONE]');
      await expect.poll(() => page.locator('.usage [data-tile=requests] b').textContent(), { timeout: 15_000 }).toBe('6');
    } finally {
      await page.close();
    }
  }, 60_000);
});

describe('the console\'s usage view with keys', () => {
  const ALICE = 'sk-usage-alice-0001';
  const BOB = 'sk-usage-bob-000002';
  const OPS = 'sk-usage-ops-000003';
  let jarvis: TestJarvis;
  beforeAll(async () => {
    jarvis = await startJarvis({
      access: {
        keys: [
          // Only chat: the console cannot follow her events, but she reads her own usage.
          { name: 'tenant-a', key: ALICE, scopes: ['chat'] },
          { name: 'tenant-b', key: BOB, scopes: ['chat', 'events'] },
          { name: 'ops', key: OPS, scopes: ['admin', 'events'] },
        ],
      },
      simulator: SIMULATOR,
      prices: PRICES,
    });
  });
  afterAll(async () => {
    await jarvis?.close();
  });

  it('shows a tenant only its own row, and the admin every key\'s', async () => {
    const auth = (key: string) => ({ authorization: `Bearer ${key}` });
    expect(await (await postChat(jarvis.url, { stream: true, messages: user('alice asks') }, { headers: { ...auth(ALICE), 'x-session-id': 'alice' } })).text()).toContain('[DONE]');
    await chatBargeIn(jarvis.url, 'bob', auth(BOB));
    const alice = (await usageOf(jarvis.url, 'key', ALICE))[0]!;
    expect(alice).toMatchObject({ key: 'tenant-a', requests: 1 });

    const open = async (key: string) => {
      const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
      await page.goto(`${jarvis.url}/console`);
      // Before a key: the usage view says it needs one.
      await expect.poll(() => page.locator('.usage').textContent()).toContain('needs a key');
      await page.locator('.keyform input[name=key]').fill(key);
      await page.locator('.keyform button').click();
      await page.locator('.usage-table[data-by=key] tbody tr').first().waitFor({ timeout: 15_000 });
      return page;
    };
    const page = await open(ALICE);
    try {
      const rows = await tableRows(page, 'key');
      expect(rows.map((r) => r[0])).toEqual(['tenant-a']);
      expect(rows[0]!.slice(1, 4)).toEqual([count(1), count(alice.input_tokens), count(alice.output_tokens)]);
      expect(rows[0]![6]).toBe(dollars(alice.cost!));
      expect(await tableRows(page, 'model')).toEqual([expect.arrayContaining(['jarvis-sim', '1'])]);
      expect(await page.locator('.usage').textContent()).not.toContain('tenant-b');
    } finally {
      await page.close();
    }
    const admin = await open(OPS);
    try {
      // The ledger orders its groups by cost; which tenant spent more depends on when the barge-in cut Bob's answer.
      await expect.poll(async () => (await tableRows(admin, 'key')).map((r) => [r[0], r[1]]).sort()).toEqual([
        ['tenant-a', '1'],
        ['tenant-b', '2'],
      ]);
      expect(await admin.locator('.usage [data-tile=requests] b').textContent()).toBe('3');
      if (process.env.CONSOLE_USAGE_SCREENSHOT) await admin.screenshot({ path: process.env.CONSOLE_USAGE_SCREENSHOT.replace(/\.png$/, '-keys.png'), fullPage: true });
    } finally {
      await admin.close();
    }
  }, 60_000);
});

describe('the console\'s usage view without a ledger', () => {
  it('says so instead of showing tables', async () => {
    const jarvis = await startJarvis({ ledger: { enabled: false }, simulator: SIMULATOR });
    const page = await browser.newPage();
    try {
      await page.goto(`${jarvis.url}/console`);
      await expect.poll(() => page.locator('.usage .unavailable').textContent()).toContain('turned off');
      expect(await page.locator('.usage-table').count()).toBe(0);
    } finally {
      await page.close();
      await jarvis.close();
    }
  });
});
