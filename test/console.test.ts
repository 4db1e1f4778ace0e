// GET /console in a real browser (Debian's Chromium, driven by playwright-core): the seed's two-request barge-in
// run through the page's try-it box shows the first stream cancelled, superseded and cleaned up, and the second
// answered; with keys, the page asks for one and shows only that tenant's sessions.
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postChat, user } from './support/chat.js';
import { launchChromium } from './support/browser.js';
import { startJarvis, throughMock, type TestJarvis } from './support/jarvis.js';
import { startMockUpstream } from '../fakes/openai/index.js';

let browser: Browser;
beforeAll(async () => {
  browser = await launchChromium();
}, 30_000);
afterAll(async () => {
  await browser?.close();
});

/** The seed's barge-in through the try-it box: a long answer, and while it streams, a short question. */
async function bargeIn(page: Page): Promise<void> {
  const prompt = page.locator('.tryit input.prompt');
  await prompt.fill('Long essay');
  await page.locator('.tryit button[type=submit]').click();
  await page.locator('.stream.live').first().waitFor({ timeout: 10_000 });
  await prompt.fill('2+2?');
  await page.locator('.tryit button[type=submit]').click();
}

describe('the console', () => {
  let jarvis: TestJarvis;
  beforeAll(async () => {
    jarvis = await startJarvis({ simulator: { tokensPerSec: 40, ttftMs: 50 } });
  });
  afterAll(async () => {
    await jarvis?.close();
  });

  it('shows the first stream cancelled (superseded by the second), cleaned up, and the second answered', async () => {
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    try {
      await page.goto(`${jarvis.url}/console`);
      await page.locator('.tile').first().waitFor();
      await bargeIn(page);
      const cancelled = page.locator('.stream.cancelled');
      await cancelled.waitFor({ timeout: 15_000 });
      await page.locator('.stream.ended').waitFor({ timeout: 15_000 });
      await expect.poll(() => cancelled.textContent()).toMatch(/cancelled \(superseded\).*cleaned up.*superseded by/);
      expect(await page.locator('.stream.ended .status').textContent()).toBe('answered (stop)');
      // Each upstream's state (without keys the page sees what the admin scope sees).
      expect(await page.locator('.health .upstreams').textContent()).toMatch(/Upstreams: ready \(.*ready\)/);
      // Both in one session row, the cancelled one first.
      expect(await page.locator('.session').count()).toBe(1);
      expect(await page.locator('.session .stream').count()).toBe(2);
      if (process.env.CONSOLE_SCREENSHOT) await page.screenshot({ path: process.env.CONSOLE_SCREENSHOT, fullPage: true });
    } finally {
      await page.close();
    }
  }, 60_000);

  it('serves every asset itself (nothing from elsewhere)', async () => {
    const page = await browser.newPage();
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    try {
      await page.goto(`${jarvis.url}/console`);
      await page.locator('.tile').first().waitFor();
      expect(requests.filter((u) => !u.startsWith(jarvis.url))).toEqual([]);
    } finally {
      await page.close();
    }
  });
});

describe('the console with keys', () => {
  const ALICE = 'sk-console-alice-01';
  const BOB = 'sk-console-bob-0002';
  let jarvis: TestJarvis;
  beforeAll(async () => {
    jarvis = await startJarvis({
      access: { keys: [{ name: 'alice', key: ALICE, scopes: ['chat', 'events'] }, { name: 'bob', key: BOB, scopes: ['chat', 'events'] }] },
      simulator: { tokensPerSec: 40, ttftMs: 50 },
    });
  });
  afterAll(async () => {
    await jarvis?.close();
  });

  it('asks for a key, and shows only that tenant\'s sessions', async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`${jarvis.url}/console`);
      await page.locator('.keyform input[name=key]').fill(ALICE);
      await page.locator('.keyform button').click();
      await page.locator('.keyform').waitFor({ state: 'detached' });
      // The key is in the page's session storage, never in its address.
      expect(page.url()).not.toContain(ALICE);
      // Bob's conversation, while Alice watches.
      const bob = await postChat(jarvis.url, { stream: true, messages: user('bob secret plans') }, { headers: { authorization: `Bearer ${BOB}`, 'x-session-id': 'bob-secret' } });
      await bob.text();
      await bargeIn(page);
      await page.locator('.stream.ended').waitFor({ timeout: 15_000 });
      await page.locator('.stream.cancelled').waitFor({ timeout: 15_000 });
      const sessions = await page.locator('.session').evaluateAll((els) => els.map((e) => e.getAttribute('data-session')));
      expect(sessions).not.toContain('bob-secret');
      expect(sessions).toHaveLength(1);
      // Rates are for the admin scope: Alice's key gets none.
      expect(await page.locator('.health').textContent()).toContain('admin scope');
    } finally {
      await page.close();
    }
  }, 60_000);
});

describe('the console in front of an upstream', () => {
  it('runs the barge-in against the upstream model, its first upstream request closed', async () => {
    const mock = await startMockUpstream({ defaults: { tokens: 60, delayMs: 20 } });
    const jarvis = await startJarvis(throughMock(mock.url));
    const page = await browser.newPage();
    try {
      await page.goto(`${jarvis.url}/console`);
      await page.locator('.tile').first().waitFor();
      await page.locator('.tryit input[name=model]').fill('mock-model');
      await bargeIn(page);
      await page.locator('.stream.cancelled').waitFor({ timeout: 15_000 });
      await page.locator('.stream.ended').waitFor({ timeout: 15_000 });
      expect(mock.requests.map((r) => r.body.model)).toEqual(['mock-model', 'mock-model']);
      expect(mock.requests[0]!.clientClosed).toBe(true);
    } finally {
      await page.close();
      await jarvis.close();
      await mock.close();
    }
  }, 60_000);
});
